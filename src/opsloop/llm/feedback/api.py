"""Feedback's REST routes under ``/api``: annotation queues, review, fine-tuning exports."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi import status
from pydantic import BaseModel
from pydantic import Field

from opsloop.kernel.identity import current_user
from opsloop.llm.feedback import routes
from opsloop.llm.feedback import services
from opsloop.llm.feedback.entities import AnnotationItem
from opsloop.llm.feedback.entities import FeedbackExport
from opsloop.llm.feedback.entities import FeedbackExportResult
from opsloop.llm.feedback.entities import Queue
from opsloop.llm.feedback.entities import QueueCreate
from opsloop.llm.feedback.entities import ReviewSubmit
from opsloop.llm.tracing.entities import TraceFilter
from opsloop.web.deps import Blobs
from opsloop.web.deps import ReadSession
from opsloop.web.deps import WriteSession

router = APIRouter(tags=["feedback"])


class ItemsAdd(BaseModel):
    trace_ids: list[str] = Field(default_factory=list)
    filter: TraceFilter | None = None
    limit: int = Field(1000, ge=1, le=100_000)


@router.post(routes.QUEUES.template, status_code=status.HTTP_201_CREATED)
def create_queue(body: QueueCreate, session: WriteSession) -> Queue:
    return services.create_queue(session, body, created_by=current_user())


@router.get(routes.QUEUES.template)
def list_queues(session: ReadSession) -> list[Queue]:
    return services.list_queues(session)


@router.get(routes.QUEUE.template)
def get_queue(name: str, session: ReadSession) -> Queue:
    return services.get_queue(session, name)


@router.post(routes.QUEUE_ITEMS.template)
def add_items(name: str, body: ItemsAdd, session: WriteSession) -> dict[str, int]:
    """Queue traces by id and/or every trace (up to ``limit``) that ``filter`` selects."""
    return {"added": services.add_items(session, name, body.trace_ids, body.filter, body.limit)}


@router.post(routes.QUEUE_NEXT.template)
def next_item(name: str, session: WriteSession) -> AnnotationItem | None:
    """Claim the next item for the calling reviewer (null when the queue is done)."""
    return services.next_item(session, name, current_user())


@router.post(routes.ITEM_REVIEW.template)
def submit_review(
    name: str, item_id: str, body: ReviewSubmit, session: WriteSession
) -> AnnotationItem:
    return services.submit_review(session, name, item_id, body, current_user())


@router.post(routes.ITEM_SKIP.template)
def skip_item(name: str, item_id: str, session: WriteSession) -> AnnotationItem:
    return services.skip_item(session, name, item_id, current_user())


@router.post(routes.EXPORTS.template, status_code=status.HTTP_201_CREATED)
def export(body: FeedbackExport, session: WriteSession, blobs: Blobs) -> FeedbackExportResult:
    """Rated traces as the next version of a dataset (chat JSONL), linked to each trace."""
    return services.export_finetuning(session, blobs, body, current_user())
