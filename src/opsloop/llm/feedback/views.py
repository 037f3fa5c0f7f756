"""The feedback pages: annotation queues with their progress, and a review page where a
reviewer reads the next claimed trace and submits the queue's scores with a plain form."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs
from urllib.parse import quote

from fastapi import APIRouter
from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse
from fastapi.responses import Response

from opsloop.errors import InvalidInput
from opsloop.kernel.identity import current_user
from opsloop.llm.feedback import services
from opsloop.llm.feedback.entities import ReviewSubmit
from opsloop.web.deps import ReadSession
from opsloop.web.deps import State
from opsloop.web.shell import UiDomain

__all__ = ["UI", "router"]

router = APIRouter(include_in_schema=False)
_MAX_FORM_BYTES = 64 * 1024

UI = UiDomain(key="feedback", title="Feedback", href="/feedback", package="opsloop.llm.feedback")


@router.get("/feedback")
def queues_page(request: Request, session: ReadSession) -> Response:
    return UI.page(request, "queues.html", "Feedback", queues=services.list_queues(session))


def _review_context(state: Any, name: str, error: str | None) -> dict[str, Any]:
    with state.store.write() as session:  # claiming the next item is a write
        queue = services.get_queue(session, name)
        item = services.next_item(session, name, current_user())
    return {"queue": queue, "item": item, "error": error}


@router.get("/feedback/{name}")
async def review_page(request: Request, name: str, state: State) -> Response:
    context = await run_in_threadpool(_review_context, state, name, None)
    return UI.subpage(request, "review.html", f"Review {name}", **context)


def _form_scores(form: dict[str, list[str]], queue: Any) -> dict[str, Any]:
    scores: dict[str, Any] = {}
    for config in queue.scores:
        raw = form.get(f"score.{config.name}", [""])[0].strip()
        if raw == "":
            raise InvalidInput(f"give a value for {config.name}")
        if config.data_type == "numeric":
            try:
                scores[config.name] = float(raw)
            except ValueError:
                raise InvalidInput(f"{config.name} takes a number, got {raw!r}") from None
        elif config.data_type == "boolean":
            scores[config.name] = raw == "true"
        else:
            scores[config.name] = raw
    return scores


@router.post("/feedback/{name}/items/{item_id}")
async def submit_review(request: Request, name: str, item_id: str, state: State) -> Response:
    """Save the form's scores (or skip), then show the next item."""
    body = (await request.body())[:_MAX_FORM_BYTES]
    form = parse_qs(body.decode("utf-8", "replace"))

    def save() -> str | None:
        with state.store.write() as session:
            queue = services.get_queue(session, name)
            reviewer = current_user()
            if form.get("action", [""])[0] == "skip":
                services.skip_item(session, name, item_id, reviewer)
                return None
            try:
                scores = _form_scores(form, queue)
                comment = form.get("comment", [""])[0].strip() or None
                services.submit_review(
                    session, name, item_id, ReviewSubmit(scores=scores, comment=comment), reviewer
                )
            except InvalidInput as exc:
                return exc.message
        return None

    error = await run_in_threadpool(save)
    if error is not None:
        context = await run_in_threadpool(_review_context, state, name, error)
        return UI.subpage(request, "review.html", f"Review {name}", status_code=400, **context)
    return RedirectResponse(f"/feedback/{quote(name)}", status_code=303)
