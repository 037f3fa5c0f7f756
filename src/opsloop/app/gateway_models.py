"""Registered models the gateway generates with in-process: the registry's side of
:class:`~opsloop.llm.gateway.ports.LocalModels`.

It lives here because it needs the model registry, a floor above ``llm``. A ref
(``support-bot@champion``, ``support-bot@3``) is resolved to its version; each version's
package is loaded once (model and tokenizer, see the ``pytorch`` flavor; a LoRA adapter onto
its base version, merged) and its
:class:`~opsloop.llm.gateway.generation.TransformersGenerator` kept, so two routes naming the
same version share one model and one batch. torch is imported only when the first local model
loads.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from opsloop.app.causal_lm import load_causal_lm
from opsloop.errors import InvalidInput

if TYPE_CHECKING:
    from opsloop.llm.gateway.generation import TransformersGenerator
    from opsloop.registry.sdk import ModelsClient

__all__ = ["RegistryLocalModels"]


class RegistryLocalModels:
    """Generators for registered causal LMs, loaded on first use and kept.

    Args:
        models: The registry client (``Client().models``).
        device: ``cuda`` or ``cpu`` for every model; by default the GPU when torch sees one.
        max_batch: The most requests one model generates for together.

    Example:
        >>> local = RegistryLocalModels(opsloop.Client().models)
        >>> answer = await local.generator("support-bot@champion").complete(body)
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
                    "can be served by the gateway"
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

    def close(self) -> None:
        """Finish the requests in flight and stop every model's worker thread."""
        with self._lock:
            loaded, self._loaded = list(self._loaded.values()), {}
        for generator in loaded:
            generator.close()
