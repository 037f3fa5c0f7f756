"""The prompt backend contract: what the SDK needs from a prompt registry, local or remote.

Two implementations: :class:`~opsloop.llm.prompts.local.LocalPromptBackend` calls the services
in-process, :class:`~opsloop.llm.prompts.remote.RemotePromptBackend` calls the REST API, which
calls the same services. Each method is one transaction (local) or one request (remote), except
the remote ``set_label``, which resolves the reference first. The cache (stale-while-revalidate)
and the fallback prompt are written once, in :class:`~opsloop.llm.prompts.sdk.PromptsClient`.

A reference is ``NAME@N``, ``NAME@label`` or ``NAME`` (``NAME@latest``, the newest version).
Every path that moves a label passes the label gate (:mod:`opsloop.llm.prompts.ports`): a label
may require a passing eval suite, and a move the gate refuses raises ``Conflict``.

Contract: methods are thread-safe; returned entities are immutable snapshots (frozen pydantic
models); errors are ``OpsloopError`` subclasses, the same class whichever backend raised them;
every write is durable when the method returns. Each method's docstring names the errors it
raises on purpose; any method may also raise ``StoreError`` (the database or server failed;
retrying may help) and, over HTTP, ``Unauthenticated`` or ``PermissionDenied``.
"""

from __future__ import annotations

from abc import ABC
from abc import abstractmethod

from opsloop.kernel.paging import Page
from opsloop.llm.prompts.entities import Prompt
from opsloop.llm.prompts.entities import PromptDiff
from opsloop.llm.prompts.entities import PromptInfo
from opsloop.llm.prompts.entities import PromptVersionCreate

__all__ = ["PromptBackend"]


class PromptBackend(ABC):
    """Prompts, their numbered versions and labels. See the module docstring for the
    contract."""

    @abstractmethod
    def create_version(self, name: str, body: PromptVersionCreate) -> tuple[Prompt, bool]:
        """Save the next version of ``name`` (the prompt is created on first use) and point
        ``body.labels`` at it; returns it and ``True``. If the latest version holds the same
        template and config, no version is added: the labels move to it and it comes back with
        ``False``. ``InvalidInput`` for a malformed name or label, neither or both of text and
        messages, no messages, or a template over the size limit; ``Conflict`` when the label
        gate refuses a label (nothing is saved then)."""

    @abstractmethod
    def get(self, ref: str) -> Prompt:
        """One version by reference. ``InvalidInput`` for a malformed reference, ``NotFound``
        when the prompt, the version or the label does not exist."""

    @abstractmethod
    def info(self, name: str) -> PromptInfo:
        """A prompt's summary: latest version number and labels. ``NotFound`` when there is
        no such prompt."""

    @abstractmethod
    def list(self, max_results: int, page_token: str | None) -> Page[PromptInfo]:
        """One page of prompts by name. ``InvalidInput`` for a page token not handed out by a
        listing."""

    @abstractmethod
    def versions(self, name: str) -> list[Prompt]:
        """Every version of a prompt, newest first. ``NotFound`` when there is no such
        prompt."""

    @abstractmethod
    def set_label(self, ref: str, label: str) -> Prompt:
        """Point ``label`` at the version ``ref`` names (moving it if it pointed elsewhere) and
        return that version. ``InvalidInput`` for a malformed reference or label (``latest``
        and numbers cannot be set), ``NotFound`` when the version does not exist, ``Conflict``
        when the label gate refuses."""

    @abstractmethod
    def delete_label(self, name: str, label: str) -> None:
        """Remove a label (its version stays). ``NotFound`` when the prompt does not exist or
        has no such label."""

    @abstractmethod
    def diff(self, old_ref: str, new_ref: str) -> PromptDiff:
        """What changed from ``old_ref`` to ``new_ref``: the template as a unified diff, the
        config keys and the variables. ``InvalidInput`` for a malformed reference,
        ``NotFound`` when either version does not exist."""
