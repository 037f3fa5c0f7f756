"""The remote feedback backend: annotation queues and exports over an opsloop server's REST API
(an export runs on the server, next to the blob store)."""

from __future__ import annotations

from pydantic import TypeAdapter

from opsloop.kernel.transport import HttpTransport
from opsloop.llm.feedback import routes
from opsloop.llm.feedback.backend import FeedbackBackend
from opsloop.llm.feedback.entities import AnnotationItem
from opsloop.llm.feedback.entities import FeedbackExport
from opsloop.llm.feedback.entities import FeedbackExportResult
from opsloop.llm.feedback.entities import Queue
from opsloop.llm.feedback.entities import QueueCreate
from opsloop.llm.feedback.entities import ReviewSubmit
from opsloop.llm.tracing.entities import TraceFilter

__all__ = ["RemoteFeedbackBackend"]

_QUEUES = TypeAdapter(list[Queue])


class RemoteFeedbackBackend(FeedbackBackend):
    """Queues on an opsloop server; errors come back as the same ``OpsloopError`` classes."""

    def __init__(self, transport: HttpTransport) -> None:
        self.http = transport

    def create_queue(self, body: QueueCreate) -> Queue:
        return Queue.model_validate(
            self.http.json("POST", routes.QUEUES.url(), json=body.model_dump())
        )

    def get_queue(self, name: str) -> Queue:
        return Queue.model_validate(self.http.json("GET", routes.QUEUE.url(name=name)))

    def list_queues(self) -> list[Queue]:
        return _QUEUES.validate_python(self.http.json("GET", routes.QUEUES.url()))

    def add_items(self, name: str, trace_ids: list[str], flt: TraceFilter | None) -> int:
        body = {"trace_ids": trace_ids, "filter": flt.model_dump() if flt else None}
        return int(self.http.json("POST", routes.QUEUE_ITEMS.url(name=name), json=body)["added"])

    def next_item(self, name: str) -> AnnotationItem | None:
        data = self.http.json("POST", routes.QUEUE_NEXT.url(name=name))
        return None if data is None else AnnotationItem.model_validate(data)

    def submit(self, name: str, item_id: str, body: ReviewSubmit) -> AnnotationItem:
        path = routes.ITEM_REVIEW.url(name=name, item_id=item_id)
        data = self.http.json("POST", path, json=body.model_dump(), idempotent=False)
        return AnnotationItem.model_validate(data)

    def skip(self, name: str, item_id: str) -> AnnotationItem:
        path = routes.ITEM_SKIP.url(name=name, item_id=item_id)
        return AnnotationItem.model_validate(self.http.json("POST", path))

    def export(self, body: FeedbackExport) -> FeedbackExportResult:
        data = self.http.json(
            "POST", routes.EXPORTS.url(), json=body.model_dump(), idempotent=False
        )
        return FeedbackExportResult.model_validate(data)
