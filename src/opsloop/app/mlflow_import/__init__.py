"""``opsloop import mlflow``: bring an MLflow tracking store's history into opsloop.

Readers (one per kind of MLflow store: SQL database, ``file:`` folder) turn what they find into
the plain records of :mod:`.source`, skipping rows they cannot read and saying why; the
:class:`~.copier.Copier` writes them through opsloop's SDK (so the target is whatever the
settings point at: the embedded store or a server) and keeps its ledger in the target itself,
which makes a second import copy nothing and an interrupted one pick up where it stopped.
mlflow itself is never imported: its schema and folder layout are read directly.
"""
