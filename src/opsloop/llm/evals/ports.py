"""What running a suite needs from the other domains, declared here and handed in.

A suite resolves its registered prompts in the prompt registry, expands its ``data:`` cases
from dataset versions, prices its model calls with the user's model prices and traces each
call. Evals used to reach all of that through the whole ``Client`` (a service locator that
hides what evals depends on and lets it reach anything). Instead the runner and
:class:`~opsloop.llm.evals.sdk.EvalsClient` take these small protocols, and the ``Client``
hands in ``client.prompts``, ``client.traces`` and ``client.data``, which match them by shape,
and the registry's :class:`~opsloop.registry.causal_lm.RegistryLocalModels` for ``model:``
providers (registered causal LMs answering in-process).
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from typing import Any
from typing import Protocol

if TYPE_CHECKING:
    from opsloop.llm.prompts.entities import Prompt
    from opsloop.llm.tracing.entities import ModelPriceOut
    from opsloop.llm.tracing.sdk import Tracer

__all__ = ["CaseData", "ChatModels", "PromptSource", "TraceSink"]


class PromptSource(Protocol):
    """The prompt registry, as a suite reads it (:class:`~opsloop.llm.prompts.sdk.PromptsClient`
    matches)."""

    def get(
        self,
        name: str,
        *,
        label: str | None = None,
        version: int | None = None,
        cache_ttl: float = ...,
    ) -> Prompt:
        """The version of ``name`` with this ``label`` or number; ``cache_ttl=0`` reads it
        fresh. ``NotFound`` when the prompt, version or label does not exist."""
        ...


class CaseData(Protocol):
    """Dataset versions whose rows become test cases (:class:`~opsloop.data.sdk.DataClient`
    matches)."""

    def get(self, ref: str) -> Any:
        """A handle on the data version ``ref`` (``NAME@N``, ``NAME@alias``, ``NAME``) whose
        ``to_pandas()`` gives its rows. ``NotFound`` when it does not exist."""
        ...


class TraceSink(Protocol):
    """Where a suite's model calls are traced and priced
    (:class:`~opsloop.llm.tracing.sdk.TracesClient` matches)."""

    @property
    def tracer(self) -> Tracer:
        """Opens the span each model call is recorded in."""
        ...

    def prices(self) -> list[ModelPriceOut]:
        """Model prices in the order they are tried (the suite uses the user's)."""
        ...

    def flush(self) -> None:
        """Store every span ended so far."""
        ...


class ChatModels(Protocol):
    """Registered causal LMs a ``model:NAME@REF`` provider asks
    (:class:`~opsloop.registry.causal_lm.RegistryLocalModels` matches)."""

    def load(self, ref: str) -> str:
        """Load the version ``ref`` names, once; its full ref (``support-bot@3``). ``NotFound``
        for an unknown version, ``InvalidInput`` for one that is not a causal LM: a suite
        refuses a bad provider before it calls any model."""
        ...

    def chat(
        self, ref: str, messages: list[dict[str, str]], options: dict[str, Any]
    ) -> dict[str, Any]:
        """An OpenAI ``chat.completion`` (a dict) from the version ``ref`` names, with the
        request ``options`` (``max_tokens``, ``temperature``, ...). ``NotFound`` for an
        unknown version, ``InvalidInput`` for one that is not a causal LM."""
        ...
