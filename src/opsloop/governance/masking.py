"""Masking at ingest: which PII entities a workspace masks in which stream, and how.

A stream is a kind of data that arrives from outside and is kept: ``traces`` (span inputs,
outputs, status messages, attributes and events) and ``predictions`` (the prediction log's
inputs, outputs and errors). The setting lives beside the retention of the same kind, in the
``mask_*`` columns of its ``retention_policies`` row: one row per workspace and kind already
says how long that data is kept, and now also what of it is never kept at all.

``placeholder`` replaces a value with its entity's name (``<EMAIL_ADDRESS>``); ``hash``
replaces it with the name and a keyed hash of the value (``<EMAIL_ADDRESS_3f9a1c2b7d4e5f60>``),
so the same e-mail in two traces (or in a trace and a prediction) can still be joined. The
key (HMAC-SHA256) is drawn once per workspace and shared by its streams; it is kept in the
database, so the hash stops anyone who reads the spans from reversing them without that
database too, but someone holding both can test guesses (a phone number has few enough).
The key is never shown by the API or the CLI.

The ingest paths read the setting through :class:`opsloop.governance.masker.IngestMasking`,
which keeps it for a few seconds.
"""

from __future__ import annotations

import secrets
from typing import Literal

from pydantic import BaseModel
from pydantic import ConfigDict
from pydantic import Field
from sqlalchemy import event
from sqlalchemy import select
from sqlalchemy.orm import Session

from opsloop.errors import InvalidInput
from opsloop.governance.pii import check_entities
from opsloop.governance.roles import DEFAULT_WORKSPACE
from opsloop.governance.tables import RetentionRow
from opsloop.kernel.routes import Route
from opsloop.kernel.timeutil import now_ms

__all__ = [
    "MASKING",
    "MODES",
    "STREAMS",
    "MaskingPolicy",
    "MaskingRule",
    "MaskingSet",
    "StreamMasking",
    "changed",
    "check_streams",
    "generation",
    "get_masking",
    "masking_rules",
    "set_masking",
]

# kept here, not in routes.py: beside retention's ``/privacy/*`` routes (workflows.privacy_api)
MASKING = Route("/privacy/masking")
STREAMS = ("traces", "predictions")
MODES = ("placeholder", "hash")
_generation = 0  # moved by every change made in this process: its ingest caches re-read at once


class MaskingSet(BaseModel):
    """A change of masking for the streams named: mask ``entities`` there (``null`` or an
    empty list: masking off), the way ``mode`` says. Streams not named stay as they are."""

    model_config = ConfigDict(extra="forbid")

    streams: list[str] = Field(min_length=1, description=f"any of {', '.join(STREAMS)}")
    entities: list[str] | None = Field(
        description="PII entities to mask (EMAIL, PHONE, CREDIT_CARD, IBAN, IP, SSN, PERSON or "
        "their full names); null or [] turns masking off for these streams"
    )
    mode: Literal["placeholder", "hash"] = Field(
        "placeholder", description="placeholder: <EMAIL_ADDRESS>; hash: a keyed hash as well"
    )


class StreamMasking(BaseModel):
    entities: list[str]
    mode: str


class MaskingPolicy(BaseModel):
    """A workspace's masking per stream (``None``: off)."""

    workspace: str = DEFAULT_WORKSPACE
    traces: StreamMasking | None = None
    predictions: StreamMasking | None = None
    updated_at: int | None = None
    updated_by: str | None = None


class MaskingRule(BaseModel):
    """What an ingest path needs for one stream: the entities, the mode, and the hash key."""

    entities: tuple[str, ...]
    mode: str
    key: str | None = None


def check_streams(names: list[str] | str) -> list[str]:
    """Stream names, checked (``traces,predictions`` or a list); ``InvalidInput`` otherwise."""
    if isinstance(names, str):
        names = [n for n in names.split(",") if n.strip()]
    out: list[str] = []
    for raw in names:
        name = str(raw).strip().lower()
        if name not in STREAMS:
            raise InvalidInput(f"unknown stream {raw!r} to mask; known: {', '.join(STREAMS)}")
        if name not in out:
            out.append(name)
    if not out:
        raise InvalidInput(f"name at least one stream to mask: {', '.join(STREAMS)}")
    return out


def generation() -> int:
    """How many masking changes this process has made (see :func:`changed`)."""
    return _generation


def changed() -> None:
    """Note a masking change made in this process, so its ingest caches re-read now."""
    global _generation
    _generation += 1


def _rows(session: Session, workspace: str) -> list[RetentionRow]:
    query = select(RetentionRow).where(
        RetentionRow.workspace == workspace, RetentionRow.kind.in_(STREAMS)
    )
    return list(session.scalars(query))


def get_masking(session: Session, workspace: str = DEFAULT_WORKSPACE) -> MaskingPolicy:
    policy = MaskingPolicy(workspace=workspace)
    for row in _rows(session, workspace):
        if row.mask_entities:
            entities = row.mask_entities.split(",")
            setattr(policy, row.kind, StreamMasking(entities=entities, mode=row.mask_mode))
            if policy.updated_at is None or row.updated_at > policy.updated_at:
                policy.updated_at, policy.updated_by = row.updated_at, row.updated_by
    return policy


def masking_rules(session: Session, workspace: str = DEFAULT_WORKSPACE) -> dict[str, MaskingRule]:
    """The streams masked in ``workspace`` and how (key included): one small read."""
    return {
        row.kind: MaskingRule(
            entities=tuple(row.mask_entities.split(",")),
            mode=row.mask_mode or "placeholder",
            key=row.mask_key,
        )
        for row in _rows(session, workspace)
        if row.mask_entities
    }


def set_masking(
    session: Session, body: MaskingSet, actor: str, workspace: str = DEFAULT_WORKSPACE
) -> MaskingPolicy:
    """Apply ``body`` (see :class:`MaskingSet`). ``InvalidInput`` names an unknown stream or
    entity, before anything changes."""
    streams = check_streams(body.streams)
    entities = ",".join(check_entities(body.entities)) if body.entities else None
    rows = {row.kind: row for row in _rows(session, workspace)}
    key = next((row.mask_key for row in rows.values() if row.mask_key), None)
    if entities and body.mode == "hash" and key is None:
        key = secrets.token_hex(32)
    now = now_ms()
    for stream in streams:
        row = rows.get(stream)
        if row is None:
            row = RetentionRow(workspace=workspace, kind=stream, days=None)
            session.add(row)
        row.mask_entities = entities
        row.mask_mode = body.mode if entities else None
        row.mask_key = key if entities and body.mode == "hash" else row.mask_key
        row.updated_at, row.updated_by = now, actor
    session.flush()
    # after the commit, not now: a cache that re-read before it would keep the old setting
    event.listen(session, "after_commit", lambda _session: changed(), once=True)
    return get_masking(session, workspace)
