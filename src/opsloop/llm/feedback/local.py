"""The local feedback backend: the services in-process, one transaction per call."""

from __future__ import annotations

from opsloop.kernel.identity import current_user
from opsloop.kernel.store_calls import StoreCalls
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


class LocalFeedbackBackend(StoreCalls, FeedbackBackend):
    """Queues in ``store``; exports write their files to ``blobs``."""

    def __init__(self, store: Store, blobs: BlobStore) -> None:
        self.store = store
        self.blobs = blobs

    def create_queue(self, body: QueueCreate) -> Queue:
        return self._write(services.create_queue, body, created_by=current_user())

    def get_queue(self, name: str) -> Queue:
        return self._read(services.get_queue, name)

    def list_queues(self) -> list[Queue]:
        return self._read(services.list_queues)

    def add_items(self, name: str, trace_ids: list[str], flt: TraceFilter | None) -> int:
        return self._write(services.add_items, name, trace_ids, flt)

    def next_item(self, name: str) -> AnnotationItem | None:
        return self._write(services.next_item, name, current_user())

    def submit(self, name: str, item_id: str, body: ReviewSubmit) -> AnnotationItem:
        return self._write(services.submit_review, name, item_id, body, current_user())

    def skip(self, name: str, item_id: str) -> AnnotationItem:
        return self._write(services.skip_item, name, item_id, current_user())

    def export(self, body: FeedbackExport) -> FeedbackExportResult:
        return self._write(services.export_finetuning, self.blobs, body, current_user())
