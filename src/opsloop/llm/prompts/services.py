"""Prompt registry services: versions, labels, lookups and diffs.

Every function takes an open session and never commits. Versions are immutable; saving a
template and config identical to the latest version returns that version (``created`` False).
Labels (``production``, ``staging``, any other) move only when someone moves them, and only
past the ``LabelGate`` the caller hands in (the evals domain's label rules).
"""

from __future__ import annotations

import difflib
import json
import uuid
from typing import Any

from sqlalchemy import Select
from sqlalchemy import delete
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy.orm import Session

from opsloop.errors import InvalidInput
from opsloop.errors import NotFound
from opsloop.kernel.paging import Page
from opsloop.kernel.paging import decode_page_token
from opsloop.kernel.paging import encode_page_token
from opsloop.kernel.refs import check_alias
from opsloop.kernel.refs import check_name
from opsloop.kernel.refs import parse_ref
from opsloop.kernel.timeutil import now_ms
from opsloop.llm.prompts.entities import ChatMessage
from opsloop.llm.prompts.entities import Prompt
from opsloop.llm.prompts.entities import PromptDiff
from opsloop.llm.prompts.entities import PromptInfo
from opsloop.llm.prompts.entities import PromptVersionCreate
from opsloop.llm.prompts.ports import LabelGate
from opsloop.llm.prompts.tables import PromptLabelRow
from opsloop.llm.prompts.tables import PromptRow
from opsloop.llm.prompts.tables import PromptVersionRow
from opsloop.llm.prompts.template import variables_of
from opsloop.store.columns import named_row
from opsloop.store.numbered import Numbering
from opsloop.store.numbered import version_row

__all__ = [
    "create_version",
    "delete_label",
    "diff_versions",
    "get_prompt",
    "list_prompts",
    "list_versions",
    "prompt_info",
    "set_label",
]

_NOUN = "prompt"
_NUMBERING = Numbering(_NOUN, PromptVersionRow, "prompt_id", PromptLabelRow, "label", "label")
MAX_TEMPLATE_CHARS = 200_000


def _prompt(session: Session, name: str) -> PromptRow:
    row: PromptRow = named_row(session, PromptRow, check_name(name, _NOUN), _NOUN)
    return row


def _labels(session: Session, prompt_id: str) -> dict[str, int]:
    rows = session.execute(
        select(PromptLabelRow.label, PromptLabelRow.number)
        .where(PromptLabelRow.prompt_id == prompt_id)
        .order_by(PromptLabelRow.label)
    )
    return dict(rows.all())


def _entity(row: PromptVersionRow, name: str, labels: dict[str, int]) -> Prompt:
    template = json.loads(row.template)
    chat = row.type == "chat"
    return Prompt(
        name=name,
        version=row.number,
        type=row.type,  # type: ignore[arg-type]
        text=None if chat else template,
        messages=[ChatMessage(**m) for m in template] if chat else None,
        config=json.loads(row.config),
        variables=json.loads(row.variables),
        labels=sorted(label for label, number in labels.items() if number == row.number),
        message=row.message,
        created_at=row.created_at,
        created_by=row.created_by,
    )


def _content(body: PromptVersionCreate) -> tuple[str, Any, list[str]]:
    if (body.text is None) == (body.messages is None):
        raise InvalidInput("a prompt version has either text (a text prompt) or messages (chat)")
    if body.text is not None:
        texts, template, kind = [body.text], body.text, "text"
    else:
        if not body.messages:
            raise InvalidInput("a chat prompt needs at least one message")
        texts = [m.content for m in body.messages]
        template, kind = [m.model_dump() for m in body.messages], "chat"
    if sum(len(t) for t in texts) > MAX_TEMPLATE_CHARS:
        raise InvalidInput(f"the template is over {MAX_TEMPLATE_CHARS:,} characters")
    return kind, template, variables_of(texts)


def create_version(
    session: Session, name: str, body: PromptVersionCreate, *, created_by: str, gate: LabelGate
) -> tuple[Prompt, bool]:
    """Save the next version of ``name`` (created on first use), or return the latest if it
    holds the same template and config; then point ``body.labels`` at it, past ``gate``."""
    from blake3 import blake3

    check_name(name, _NOUN)
    labels = [check_alias(label) for label in body.labels]
    kind, template, variables = _content(body)
    canonical = json.dumps([kind, template, body.config], sort_keys=True, default=str)
    content_hash = blake3(canonical.encode()).hexdigest()
    now = now_ms()
    prompt = session.scalars(select(PromptRow).where(PromptRow.name == name)).first()
    if prompt is None:
        prompt = PromptRow(
            id=uuid.uuid4().hex, name=name, created_at=now, updated_at=now, created_by=created_by
        )
        session.add(prompt)
        session.flush()
    latest = session.scalars(_versions_newest_first(prompt.id).limit(1)).first()
    created = latest is None or latest.content_hash != content_hash
    if created:
        row = PromptVersionRow(
            id=uuid.uuid4().hex,
            prompt_id=prompt.id,
            number=(latest.number if latest else 0) + 1,
            type=kind,
            template=json.dumps(template),
            config=json.dumps(body.config, default=str),
            variables=json.dumps(variables),
            content_hash=content_hash,
            message=body.message,
            created_at=now,
            created_by=created_by,
        )
        session.add(row)
        prompt.updated_at = now
        session.flush()
    else:
        row = latest  # type: ignore[assignment]
    for label in labels:
        _point_label(session, gate, prompt, row, label)
    session.flush()
    return _entity(row, name, _labels(session, prompt.id)), created


def _version_row(session: Session, ref: str) -> tuple[PromptRow, PromptVersionRow]:
    parsed = parse_ref(ref, _NOUN)
    prompt = _prompt(session, parsed.name)
    return prompt, version_row(session, _NUMBERING, parsed, prompt.id)


def get_prompt(session: Session, ref: str) -> Prompt:
    """``NAME@N``, ``NAME@label`` or ``NAME`` (latest)."""
    prompt, row = _version_row(session, ref)
    return _entity(row, prompt.name, _labels(session, prompt.id))


def prompt_info(session: Session, name: str) -> PromptInfo:
    prompt = _prompt(session, name)
    latest = session.scalar(
        select(func.max(PromptVersionRow.number)).where(PromptVersionRow.prompt_id == prompt.id)
    )
    return PromptInfo(
        name=prompt.name,
        description=prompt.description,
        latest_version=latest,
        labels=_labels(session, prompt.id),
        created_at=prompt.created_at,
        updated_at=prompt.updated_at,
    )


def list_prompts(
    session: Session, max_results: int = 100, page_token: str | None = None
) -> Page[PromptInfo]:
    offset = decode_page_token(page_token)
    names = session.scalars(
        select(PromptRow.name).order_by(PromptRow.name).offset(offset).limit(max_results + 1)
    ).all()
    token = encode_page_token(offset + max_results) if len(names) > max_results else None
    return Page[PromptInfo](
        items=[prompt_info(session, n) for n in names[:max_results]], next_page_token=token
    )


def list_versions(session: Session, name: str) -> list[Prompt]:
    """Every version of a prompt, newest first."""
    prompt = _prompt(session, name)
    labels = _labels(session, prompt.id)
    rows = session.scalars(_versions_newest_first(prompt.id))
    return [_entity(r, prompt.name, labels) for r in rows]


def _versions_newest_first(prompt_id: str) -> Select[tuple[PromptVersionRow]]:
    return (
        select(PromptVersionRow)
        .where(PromptVersionRow.prompt_id == prompt_id)
        .order_by(PromptVersionRow.number.desc())
    )


def set_label(session: Session, ref: str, label: str, *, gate: LabelGate) -> Prompt:
    """Point ``label`` at the version ``ref`` names (moving it if it pointed elsewhere), unless
    ``gate`` refuses."""
    check_alias(label)
    prompt, row = _version_row(session, ref)
    _point_label(session, gate, prompt, row, label)
    session.flush()
    return _entity(row, prompt.name, _labels(session, prompt.id))


def _point_label(
    session: Session, gate: LabelGate, prompt: PromptRow, row: PromptVersionRow, label: str
) -> None:
    """Move ``label`` to ``row`` once ``gate`` lets it (it raises when a label rule is unmet)."""
    gate.check(session, prompt.name, row.number, label)
    session.merge(PromptLabelRow(prompt_id=prompt.id, label=label, number=row.number))


def delete_label(session: Session, name: str, label: str) -> None:
    prompt = _prompt(session, name)
    deleted = session.execute(
        delete(PromptLabelRow).where(
            PromptLabelRow.prompt_id == prompt.id, PromptLabelRow.label == label
        )
    )
    if not deleted.rowcount:  # type: ignore[attr-defined]
        raise NotFound(f"prompt {name!r} has no label {label!r}")


def _as_text(prompt: Prompt) -> list[str]:
    if prompt.type == "text":
        return [line + "\n" for line in (prompt.text or "").splitlines()]
    return [f"[{m.role}]\n{m.content}\n" for m in prompt.messages or []]


def diff_versions(session: Session, old_ref: str, new_ref: str) -> PromptDiff:
    """What changed between two versions: template (unified diff), config, variables."""
    old, new = get_prompt(session, old_ref), get_prompt(session, new_ref)
    template = "".join(
        difflib.unified_diff(_as_text(old), _as_text(new), fromfile=old.ref, tofile=new.ref)
    )
    keys = old.config.keys() | new.config.keys()
    config = {
        k: (old.config.get(k), new.config.get(k))
        for k in sorted(keys)
        if old.config.get(k) != new.config.get(k)
    }
    return PromptDiff(
        old=old.ref,
        new=new.ref,
        template=template,
        config=config,
        variables_added=sorted(set(new.variables) - set(old.variables)),
        variables_removed=sorted(set(old.variables) - set(new.variables)),
    )
