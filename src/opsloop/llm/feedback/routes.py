"""The feedback domain's REST paths, written once (under ``/api``): ``api.py`` declares them
and ``remote.py`` requests them.
"""

from __future__ import annotations

from opsloop.kernel.routes import Route

QUEUES = Route("/annotation-queues")
QUEUE = Route("/annotation-queues/{name}")
QUEUE_ITEMS = Route("/annotation-queues/{name}/items")
QUEUE_NEXT = Route("/annotation-queues/{name}/next")
ITEM_REVIEW = Route("/annotation-queues/{name}/items/{item_id}/review")
ITEM_SKIP = Route("/annotation-queues/{name}/items/{item_id}/skip")
EXPORTS = Route("/feedback-exports")
