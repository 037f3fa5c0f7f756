"""The prompt registry's tables: prompts, their immutable numbered versions, and labels.

A version's template is stored as JSON text: a string for a text prompt, a list of
``{"role", "content"}`` messages for a chat prompt. ``content_hash`` (BLAKE3 of the canonical
template and config) lets "save the same prompt again" return the latest version unchanged.
"""

from __future__ import annotations

from sqlalchemy import Integer
from sqlalchemy import String
from sqlalchemy import Text
from sqlalchemy import UniqueConstraint
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from opsloop.store import columns as col
from opsloop.store.base import Base


class PromptRow(col.Named, col.Described, col.CreatedAt, col.UpdatedAt, col.CreatedBy, Base):
    __tablename__ = "prompts"


class PromptVersionRow(col.IdKey, col.CreatedAt, col.CreatedBy, Base):
    __tablename__ = "prompt_versions"
    __table_args__ = (UniqueConstraint("prompt_id", "number"),)

    prompt_id: Mapped[str] = col.owner_ref("prompts")
    number: Mapped[int] = mapped_column(Integer)
    type: Mapped[str] = mapped_column(String(8))  # text or chat
    template: Mapped[str] = mapped_column(Text)
    config: Mapped[str] = mapped_column(Text)
    variables: Mapped[str] = mapped_column(Text)
    content_hash: Mapped[str] = mapped_column(String(64))
    message: Mapped[str | None] = mapped_column(Text)


class PromptLabelRow(Base):
    __tablename__ = "prompt_labels"

    prompt_id: Mapped[str] = col.owner_key("prompts")
    label: Mapped[str] = mapped_column(String(64), primary_key=True)
    number: Mapped[int] = mapped_column(Integer)
