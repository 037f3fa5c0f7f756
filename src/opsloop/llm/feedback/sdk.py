"""Feedback in the SDK: ``client.feedback`` for annotation queues and fine-tuning exports."""

from __future__ import annotations

from typing import Any

from opsloop.llm.feedback.backend import FeedbackBackend
from opsloop.llm.feedback.entities import AnnotationItem
from opsloop.llm.feedback.entities import FeedbackExport
from opsloop.llm.feedback.entities import FeedbackExportResult
from opsloop.llm.feedback.entities import Queue
from opsloop.llm.feedback.entities import QueueCreate
from opsloop.llm.feedback.entities import ReviewSubmit
from opsloop.llm.feedback.entities import ScoreConfig
from opsloop.llm.tracing.entities import TraceFilter

__all__ = ["FeedbackClient"]


class FeedbackClient:
    """Annotation queues and exports of rated traces.

    Example:
        >>> fb = Client().feedback
        >>> fb.create_queue("support-review", scores=[{"name": "helpfulness", "min": 1, "max": 5}])
        >>> fb.add("support-review", filter={"tags": ["support"]})
        >>> item = fb.next("support-review")
        >>> fb.submit("support-review", item.id, {"helpfulness": 4})
        >>> fb.export("support-sft", filter={"scores": ["helpfulness>=4"]})
    """

    def __init__(self, backend: FeedbackBackend) -> None:
        self._backend = backend

    def create_queue(
        self,
        name: str,
        *,
        scores: list[ScoreConfig | dict[str, Any]],
        description: str | None = None,
    ) -> Queue:
        configs = [s if isinstance(s, ScoreConfig) else ScoreConfig(**s) for s in scores]
        return self._backend.create_queue(
            QueueCreate(name=name, description=description, scores=configs)
        )

    def queue(self, name: str) -> Queue:
        return self._backend.get_queue(name)

    def queues(self) -> list[Queue]:
        return self._backend.list_queues()

    def add(
        self,
        queue: str,
        trace_ids: list[str] | None = None,
        *,
        filter: TraceFilter | dict[str, Any] | None = None,
    ) -> int:
        """Queue traces by id and/or by a trace filter; returns how many were new."""
        flt = TraceFilter(**filter) if isinstance(filter, dict) else filter
        return self._backend.add_items(queue, list(trace_ids or []), flt)

    def next(self, queue: str) -> AnnotationItem | None:
        """Claim the next item to review, with its trace (None when the queue is done)."""
        return self._backend.next_item(queue)

    def submit(
        self, queue: str, item_id: str, scores: dict[str, Any], *, comment: str | None = None
    ) -> AnnotationItem:
        return self._backend.submit(queue, item_id, ReviewSubmit(scores=scores, comment=comment))

    def skip(self, queue: str, item_id: str) -> AnnotationItem:
        return self._backend.skip(queue, item_id)

    def export(
        self,
        dataset: str,
        *,
        format: str = "sft",
        filter: TraceFilter | dict[str, Any] | None = None,
        score: str | None = None,
        min_margin: float = 0.0,
        message: str | None = None,
    ) -> FeedbackExportResult:
        """Rated traces as the next version of ``dataset``: ``sft`` chats, or ``preference``
        pairs ranked by ``score``; each trace used is linked to the version in lineage."""
        flt = TraceFilter(**filter) if isinstance(filter, dict) else (filter or TraceFilter())
        return self._backend.export(
            FeedbackExport(
                dataset=dataset,
                format=format,
                filter=flt,
                score=score,  # type: ignore[arg-type]
                min_margin=min_margin,
                message=message,
            )
        )
