"""Registered causal LMs with their tokenizers: loaded and checked the same way wherever one is
used (the gateway serves it, an eval suite asks it, fine-tuning trains it).

The ``pytorch`` flavor keeps the tokenizer on the model it loads, and a model that cannot
generate or came without its tokenizer is refused with a message that says how to register it.
:class:`RegistryLocalModels` keeps one batching generator per version: the gateway's
:class:`~opsloop.llm.gateway.ports.LocalModels` and the eval suites'
:class:`~opsloop.llm.evals.ports.ChatModels` (a ``model:NAME@REF`` provider). It lives in the
registry because it loads registered versions; the generator it builds is the gateway's, a
floor below. torch is imported only when the first model loads.
"""

from __future__ import annotations

import asyncio
import threading
from typing import TYPE_CHECKING
from typing import Any

from opsloop.errors import InvalidInput

if TYPE_CHECKING:
    from opsloop.llm.gateway.generation import TransformersGenerator
    from opsloop.registry.sdk import ModelsClient

__all__ = ["RegistryLocalModels", "load_causal_lm"]


def load_causal_lm(models: ModelsClient, ref: str) -> tuple[Any, Any]:
    """The model and tokenizer of the ``pytorch`` version ``ref`` (callers check the flavor
    first, each with its own message).

    Raises:
        InvalidInput: The model cannot generate, or was registered without a tokenizer.
    """
    model = models.load(ref).raw
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model  # a LoRA's base
    if not (callable(getattr(inner, "can_generate", None)) and inner.can_generate()):
        raise InvalidInput(f"{ref} ({type(model).__name__}) is not a causal LM")
    tokenizer = getattr(model, "tokenizer", None)
    if tokenizer is None:
        raise InvalidInput(
            f"{ref} was registered without a tokenizer; register it with "
            "flavor_options={'tokenizer': tokenizer}"
        )
    return model, tokenizer


class RegistryLocalModels:
    """Generators for registered causal LMs, loaded on first use and kept.

    A ref (``support-bot@champion``, ``support-bot@3``) is resolved to its version; each
    version's package is loaded once (model and tokenizer; a LoRA adapter onto its base
    version, merged) and its generator kept, so two routes or providers naming the same
    version share one model and one batch.

    Args:
        models: The registry client (``Client().models``).
        device: ``cuda`` or ``cpu`` for every model; by default the GPU when torch sees one.
        max_batch: The most requests one model generates for together.

    Example:
        >>> local = RegistryLocalModels(opsloop.Client().models)
        >>> answer = await local.generator("support-bot@champion").complete(body)
        >>> local.chat("support-bot@3", [{"role": "user", "content": "hi"}], {"max_tokens": 20})
    """

    def __init__(
        self, models: ModelsClient, *, device: str | None = None, max_batch: int = 32
    ) -> None:
        self._models = models
        self._device = device
        self._max_batch = max_batch
        self._loaded: dict[str, TransformersGenerator] = {}
        self._lock = threading.Lock()  # held while loading: a version loads once

    def generator(self, ref: str) -> TransformersGenerator:
        """The generator of the version ``ref`` names (loading it the first time).

        Raises:
            NotFound: No such model, version or alias.
            InvalidInput: The version is not a transformers causal LM registered with its
                tokenizer.
        """
        version = self._models.version(ref)  # NotFound for an unknown name, version or alias
        with self._lock:
            found = self._loaded.get(version.ref)
            if found is not None:
                return found
            if version.flavor != "pytorch":
                raise InvalidInput(
                    f"{version.ref} is a {version.flavor} model; only transformers causal LMs "
                    "can generate text"
                )
            model, tokenizer = load_causal_lm(self._models, version.ref)
            if hasattr(model, "merge_and_unload"):  # a LoRA adapter, on its own copy of the base:
                model = model.merge_and_unload()  # merged, it costs what the base costs a token
            from opsloop.llm.gateway.generation import TransformersGenerator

            generator = TransformersGenerator(
                model, tokenizer, name=version.ref, device=self._device, max_batch=self._max_batch
            )
            self._loaded[version.ref] = generator
            return generator

    def load(self, ref: str) -> str:
        """Load the version ``ref`` names (once) and return its full ref (``support-bot@3``).

        Raises:
            NotFound, InvalidInput: As :meth:`generator`.
        """
        return self.generator(ref).name

    def chat(
        self, ref: str, messages: list[dict[str, str]], options: dict[str, Any]
    ) -> dict[str, Any]:
        """An OpenAI ``chat.completion`` from the version ``ref`` names, from a plain thread
        (an eval suite's workers): the request joins the model's batch like a gateway call.

        Raises:
            NotFound, InvalidInput: As :meth:`generator`, or a request the model cannot answer.
        """
        generator = self.generator(ref)
        return asyncio.run(generator.complete({**options, "messages": messages}))

    def close(self) -> None:
        """Finish the requests in flight and stop every model's worker thread."""
        with self._lock:
            loaded, self._loaded = list(self._loaded.values()), {}
        for generator in loaded:
            generator.close()
