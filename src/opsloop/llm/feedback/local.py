"""The local feedback backend: the services in-process, one transaction per call."""

from __future__ import annotations

from opsloop.kernel.identity import current_user
from opsloop.llm.feedback import services
from opsloop.llm.feedback.backend import FeedbackBackend
from opsloop.llm.feedback.entities import AnnotationItem
from opsloop.llm.feedback.entities import FeedbackExport
from opsloop.llm.feedback.entities import FeedbackExportResult
from opsloop.llm.feedback.entities import Queue
from opsloop.llm.feedback.entities import QueueCreate
from opsloop.llm.feedback.entities import ReviewSubmit
from opsloop.llm.tracing.entities import TraceFilter
from opsloop.store.blobs import BlobStore
from opsloop.store.database import Store

__all__ = ["LocalFeedbackBackend"]


class LocalFeedbackBackend(FeedbackBackend):
    """Queues in ``store``; exports write their files to ``blobs``."""

    def __init__(self, store: Store, blobs: BlobStore) -> None:
        self.store = store
        self.blobs = blobs

    def create_queue(self, body: QueueCreate) -> Queue:
        with self.store.write() as s:
            return services.create_queue(s, body, created_by=current_user())

    def get_queue(self, name: str) -> Queue:
        with self.store.read() as s:
            return services.get_queue(s, name)

    def list_queues(self) -> list[Queue]:
        with self.store.read() as s:
            return services.list_queues(s)

    def add_items(self, name: str, trace_ids: list[str], flt: TraceFilter | None) -> int:
        with self.store.write() as s:
            return services.add_items(s, name, trace_ids, flt)

    def next_item(self, name: str) -> AnnotationItem | None:
        with self.store.write() as s:
            return services.next_item(s, name, current_user())

    def submit(self, name: str, item_id: str, body: ReviewSubmit) -> AnnotationItem:
        with self.store.write() as s:
            return services.submit_review(s, name, item_id, body, current_user())

    def skip(self, name: str, item_id: str) -> AnnotationItem:
        with self.store.write() as s:
            return services.skip_item(s, name, item_id, current_user())

    def export(self, body: FeedbackExport) -> FeedbackExportResult:
        with self.store.write() as s:
            return services.export_finetuning(s, self.blobs, body, current_user())
