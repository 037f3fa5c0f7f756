"""The prompt half of :class:`opsloop.Client` (``client.prompts``), with a local cache.

``get`` serves a prompt from memory while it is fresh (``cache_ttl`` seconds); once stale it
still returns the cached copy at once and refreshes it on a background thread
(stale-while-revalidate), so an application never waits on the registry after the first call.
The caller's ``fallback`` is used only when nothing is cached *and* the server cannot be
reached; any other error (an unknown prompt or label) is raised, never papered over.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from opsloop.errors import InvalidInput
from opsloop.errors import StoreError
from opsloop.kernel.paging import Page
from opsloop.llm.prompts.backend import PromptBackend
from opsloop.llm.prompts.entities import ChatMessage
from opsloop.llm.prompts.entities import Prompt
from opsloop.llm.prompts.entities import PromptDiff
from opsloop.llm.prompts.entities import PromptInfo
from opsloop.llm.prompts.entities import PromptVersionCreate

__all__ = ["PromptsClient"]

DEFAULT_TTL_S = 60.0


class PromptsClient:
    """The prompt registry; reach it as ``Client().prompts`` or through ``opsloop.prompts``.

    Example:
        >>> client.prompts.create("answer", text="Answer: {{ question }}", labels=["staging"])
        >>> client.prompts.get("answer", label="staging").compile(question="Why?")
    """

    def __init__(self, backend: PromptBackend) -> None:
        self._backend = backend
        self._cache: dict[str, tuple[Prompt, float]] = {}
        self._refreshing: set[str] = set()
        self._lock = threading.Lock()

    def create(
        self,
        name: str,
        *,
        text: str | None = None,
        messages: list[dict[str, str]] | None = None,
        config: dict[str, Any] | None = None,
        message: str | None = None,
        labels: list[str] | None = None,
    ) -> Prompt:
        """Save the next version of ``name``: ``text`` (a text prompt) or ``messages`` (chat,
        ``[{"role": "system", "content": "..."}, ...]``). Saving the latest version's exact
        template and config again returns it instead of a copy."""
        try:
            chat = [ChatMessage(**m) for m in messages] if messages is not None else None
        except (TypeError, ValueError) as exc:
            raise InvalidInput(f"messages are {{'role', 'content'}} mappings: {exc}") from None
        body = PromptVersionCreate(
            text=text,
            messages=chat,
            config=config or {},
            message=message,
            labels=labels or [],
        )
        prompt, _ = self._backend.create_version(name, body)
        self._forget(name)
        return prompt

    def get(
        self,
        name: str,
        *,
        label: str | None = None,
        version: int | None = None,
        cache_ttl: float = DEFAULT_TTL_S,
        fallback: str | list[dict[str, str]] | None = None,
    ) -> Prompt:
        """A version by ``label`` (default ``production``) or number, cached for ``cache_ttl``
        seconds (0 disables the cache); ``fallback`` (text or messages) only when the server is
        unreachable and nothing is cached."""
        if label is not None and version is not None:
            raise InvalidInput("ask for a label or a version, not both")
        ref = f"{name}@{version if version is not None else (label or 'production')}"
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(ref)
        if cached is not None and cache_ttl > 0:
            prompt, fetched = cached
            if now - fetched > cache_ttl:
                self._refresh_in_background(ref)
            return prompt
        try:
            prompt = self._backend.get(ref)
        except StoreError:
            if fallback is None:
                raise
            return _fallback_prompt(name, fallback)
        with self._lock:
            self._cache[ref] = (prompt, time.monotonic())
        return prompt

    def _refresh_in_background(self, ref: str) -> None:
        with self._lock:
            if ref in self._refreshing:
                return
            self._refreshing.add(ref)

        def refresh() -> None:
            try:
                prompt = self._backend.get(ref)
            except Exception:
                return
            else:
                with self._lock:
                    self._cache[ref] = (prompt, time.monotonic())
            finally:
                with self._lock:
                    self._refreshing.discard(ref)

        threading.Thread(target=refresh, name="opsloop-prompt-refresh", daemon=True).start()

    def _forget(self, name: str) -> None:
        with self._lock:
            for ref in [r for r in self._cache if r.partition("@")[0] == name]:
                del self._cache[ref]

    def get_version(self, ref: str) -> Prompt:
        """One version by reference (``NAME@N``, ``NAME@label``, or ``NAME`` for the latest),
        read from the registry every time: no cache and no fallback."""
        return self._backend.get(ref)

    def info(self, name: str) -> PromptInfo:
        return self._backend.info(name)

    def list(self, max_results: int = 100, page_token: str | None = None) -> Page[PromptInfo]:
        return self._backend.list(max_results, page_token)

    def versions(self, name: str) -> list[Prompt]:
        return self._backend.versions(name)

    def set_label(self, name: str, version: int, label: str) -> Prompt:
        """Point ``label`` (``production``, ``staging``, any other) at ``version``."""
        prompt = self._backend.set_label(f"{name}@{version}", label)
        self._forget(name)
        return prompt

    def delete_label(self, name: str, label: str) -> None:
        self._backend.delete_label(name, label)
        self._forget(name)

    def diff(self, name: str, old: int, new: int) -> PromptDiff:
        return self._backend.diff(f"{name}@{old}", f"{name}@{new}")


def _fallback_prompt(name: str, fallback: str | list[dict[str, str]]) -> Prompt:
    from opsloop.llm.prompts.template import variables_of

    if isinstance(fallback, str):
        return Prompt(
            name=name,
            version=0,
            type="text",
            text=fallback,
            variables=variables_of([fallback]),
            created_at=0,
            created_by="",
            is_fallback=True,
        )
    messages = [ChatMessage(**m) for m in fallback]
    return Prompt(
        name=name,
        version=0,
        type="chat",
        messages=messages,
        variables=variables_of([m.content for m in messages]),
        created_at=0,
        created_by="",
        is_fallback=True,
    )
