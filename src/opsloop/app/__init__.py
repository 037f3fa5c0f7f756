"""The top floor: the ``opsloop`` command, the server app, the quickstart, the scheduler and the
workflows that cross domains (the retraining loop: alert → pipeline → gate → rollout).

Everything here may import anything below; nothing below imports from here.
"""
