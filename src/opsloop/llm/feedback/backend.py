"""The feedback backend contract and its two implementations: in-process services or REST."""

from __future__ import annotations

from abc import ABC, abstractmethod
from urllib.parse import quote

from pydantic import TypeAdapter

from opsloop.kernel.identity import current_user
from opsloop.kernel.transport import HttpTransport
from opsloop.llm.feedback import services
from opsloop.llm.feedback.entities import (
    AnnotationItem,
    FeedbackExport,
    FeedbackExportResult,
    Queue,
    QueueCreate,
    ReviewSubmit,
)
from opsloop.llm.tracing.entities import TraceFilter
from opsloop.store.blobs import BlobStore
from opsloop.store.database import Store

__all__ = ["FeedbackBackend", "HttpFeedbackBackend", "LocalFeedbackBackend"]

_QUEUES = TypeAdapter(list[Queue])


class FeedbackBackend(ABC):
    @abstractmethod
    def create_queue(self, body: QueueCreate) -> Queue: ...

    @abstractmethod
    def get_queue(self, name: str) -> Queue: ...

    @abstractmethod
    def list_queues(self) -> list[Queue]: ...

    @abstractmethod
    def add_items(self, name: str, trace_ids: list[str], flt: TraceFilter | None) -> int: ...

    @abstractmethod
    def next_item(self, name: str) -> AnnotationItem | None: ...

    @abstractmethod
    def submit(self, name: str, item_id: str, body: ReviewSubmit) -> AnnotationItem: ...

    @abstractmethod
    def skip(self, name: str, item_id: str) -> AnnotationItem: ...

    @abstractmethod
    def export(self, body: FeedbackExport) -> FeedbackExportResult: ...


class LocalFeedbackBackend(FeedbackBackend):
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


class HttpFeedbackBackend(FeedbackBackend):
    def __init__(self, transport: HttpTransport) -> None:
        self.http = transport

    def _queue_path(self, name: str) -> str:
        return f"/api/annotation-queues/{quote(name)}"

    def create_queue(self, body: QueueCreate) -> Queue:
        response = self.http.request("POST", "/api/annotation-queues", json=body.model_dump())
        return Queue.model_validate(response.json())

    def get_queue(self, name: str) -> Queue:
        return Queue.model_validate(self.http.request("GET", self._queue_path(name)).json())

    def list_queues(self) -> list[Queue]:
        return _QUEUES.validate_python(self.http.request("GET", "/api/annotation-queues").json())

    def add_items(self, name: str, trace_ids: list[str], flt: TraceFilter | None) -> int:
        body = {"trace_ids": trace_ids, "filter": flt.model_dump() if flt else None}
        response = self.http.request("POST", self._queue_path(name) + "/items", json=body)
        return int(response.json()["added"])

    def next_item(self, name: str) -> AnnotationItem | None:
        response = self.http.request("POST", self._queue_path(name) + "/next")
        data = response.json()
        return None if data is None else AnnotationItem.model_validate(data)

    def submit(self, name: str, item_id: str, body: ReviewSubmit) -> AnnotationItem:
        path = f"{self._queue_path(name)}/items/{quote(item_id)}/review"
        response = self.http.request("POST", path, json=body.model_dump(), idempotent=False)
        return AnnotationItem.model_validate(response.json())

    def skip(self, name: str, item_id: str) -> AnnotationItem:
        path = f"{self._queue_path(name)}/items/{quote(item_id)}/skip"
        return AnnotationItem.model_validate(self.http.request("POST", path).json())

    def export(self, body: FeedbackExport) -> FeedbackExportResult:
        response = self.http.request(
            "POST", "/api/feedback-exports", json=body.model_dump(), idempotent=False
        )
        return FeedbackExportResult.model_validate(response.json())
