"""The feedback backend contract: what the SDK needs for annotation queues and fine-tuning
exports, local or remote.

Two implementations: :class:`~opsloop.llm.feedback.local.LocalFeedbackBackend` calls the
services in-process, :class:`~opsloop.llm.feedback.remote.RemoteFeedbackBackend` calls the REST
API, which calls the same services. A queue holds trace ids; a reviewer claims the oldest
pending item (a claim lapses after 30 minutes), and submitting it records its scores on the
trace (source ``human``). An export writes rated traces as the next version of a dataset and
links each trace to it in lineage. Reviewer and author are the current user.

Contract: methods are thread-safe; returned entities are immutable snapshots (frozen pydantic
models); errors are ``OpsloopError`` subclasses, the same class whichever backend raised them;
every write is durable when the method returns (an export's blob before its version). Each
method's docstring names the errors it raises on purpose; any method may also raise
``StoreError`` (the database, blob store or server failed; retrying may help) and, over HTTP,
``Unauthenticated`` or ``PermissionDenied``.
"""

from __future__ import annotations

from abc import ABC
from abc import abstractmethod

from opsloop.llm.feedback.entities import AnnotationItem
from opsloop.llm.feedback.entities import FeedbackExport
from opsloop.llm.feedback.entities import FeedbackExportResult
from opsloop.llm.feedback.entities import Queue
from opsloop.llm.feedback.entities import QueueCreate
from opsloop.llm.feedback.entities import ReviewSubmit
from opsloop.llm.tracing.entities import TraceFilter

__all__ = ["FeedbackBackend"]


class FeedbackBackend(ABC):
    """Annotation queues, their review, and exports of rated traces. See the module docstring
    for the contract."""

    @abstractmethod
    def create_queue(self, body: QueueCreate) -> Queue:
        """Create an empty queue with the scores its reviewers give. ``InvalidInput`` for a
        malformed name, two scores with one name or a categorical score without categories;
        ``Conflict`` when a queue already has the name."""

    @abstractmethod
    def get_queue(self, name: str) -> Queue:
        """One queue with its item counts by status. ``NotFound`` when there is none."""

    @abstractmethod
    def list_queues(self) -> list[Queue]:
        """Every queue by name, with item counts. Raises nothing on purpose."""

    @abstractmethod
    def add_items(self, name: str, trace_ids: list[str], flt: TraceFilter | None) -> int:
        """Queue the given traces and/or the traces ``flt`` selects (up to 1000); returns how
        many were new to the queue (queued ones are skipped). ``NotFound`` when the queue or a
        trace does not exist; ``InvalidInput`` when nothing is selected or ``flt`` is
        malformed."""

    @abstractmethod
    def next_item(self, name: str) -> AnnotationItem | None:
        """Claim the next item for the current user (the one they already hold, else the
        oldest pending one nobody holds), with its trace; ``None`` when the queue is done.
        ``NotFound`` when the queue does not exist."""

    @abstractmethod
    def submit(self, name: str, item_id: str, body: ReviewSubmit) -> AnnotationItem:
        """Record the scores on the item's trace and mark it done. ``NotFound`` when the item
        is not in the queue; ``Conflict`` when it is already done or skipped;
        ``InvalidInput`` for a score the queue does not take or a value that does not fit it
        (type, range, categories)."""

    @abstractmethod
    def skip(self, name: str, item_id: str) -> AnnotationItem:
        """Mark the item skipped. ``NotFound`` when the item is not in the queue;
        ``Conflict`` when it is already done or skipped."""

    @abstractmethod
    def export(self, body: FeedbackExport) -> FeedbackExportResult:
        """Write the traces ``body.filter`` selects as ``train.jsonl`` (SFT chats or
        preference pairs) in the next version of ``body.dataset`` (``created`` is false when
        the same rows were exported before), each trace used linked to it. ``InvalidInput``
        for a malformed dataset name or filter, a preference export without ``score``, or
        when no rows come out of the selected traces."""
