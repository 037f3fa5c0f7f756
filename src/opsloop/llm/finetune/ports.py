"""What fine-tuning needs from the model registry, a floor above ``llm``: handed in by
``opsloop.app.finetune`` (``RegistryBaseModels``, ``RegistryModelRegistrar``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from typing import Protocol

__all__ = ["BaseModel", "BaseModels", "ModelRegistrar", "TrainedModel"]


@dataclass
class BaseModel:
    """A causal LM to start from, with its tokenizer, and the ref it was found by.

    ``version_id`` is the registry's id of the version (``None`` for a local folder): the run
    records it as an input, so the trained version's lineage reaches its base.
    """

    model: Any
    tokenizer: Any
    ref: str
    version_id: str | None = None


class BaseModels(Protocol):
    def load(self, ref: str) -> BaseModel:
        """The registered version ``NAME@ref`` as a model and its tokenizer.

        Raises:
            NotFound: No such model, version or alias.
            InvalidInput: Not a transformers causal LM registered with its tokenizer.
        """
        ...


@dataclass
class TrainedModel:
    """A trained model (a transformers model or a peft adapter) with its tokenizer, to be
    registered as the next version of ``name``: produced by the finished run ``run_id``,
    derived from ``base``, tagged with ``tags``."""

    name: str
    model: Any
    tokenizer: Any
    run_id: str
    base: BaseModel
    tags: dict[str, str]


class ModelRegistrar(Protocol):
    def register(self, trained: TrainedModel) -> str:
        """Register ``trained`` as the next version of its name; return the new version's
        ref."""
        ...
