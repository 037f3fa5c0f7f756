"""The model registry: ``opsloop.models.register``, ``load``, ``promote``, ``evaluate``...

Module-level functions use the default client (the embedded store, or the server named by
``OPSLOOP_SERVER_URL``), as ``opsloop.data`` does::

    import opsloop

    version = opsloop.models.register("churn", model, input_example=X.head())
    opsloop.models.promote(version.ref, "champion", policy="gate.yaml")
    opsloop.models.load("churn@champion").predict(X.head(3))
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from typing import Any

if TYPE_CHECKING:
    from opsloop.registry.entities import AliasEvent
    from opsloop.registry.entities import ModelVersion
    from opsloop.registry.entities import RegisteredModel
    from opsloop.registry.evaluations import Evaluation
    from opsloop.registry.package import LoadedModel
    from opsloop.registry.sdk import ModelsClient

__all__ = [
    "card",
    "evaluate",
    "get",
    "history",
    "lineage",
    "load",
    "promote",
    "register",
    "set_alias",
    "version",
]


def _models() -> ModelsClient:
    from opsloop.fluent import get_client

    return get_client().models


def register(name: str, model: Any = None, **options: Any) -> ModelVersion:
    """Register the next version of ``name`` (see ``ModelsClient.register``)."""
    return _models().register(name, model, **options)


def load(ref: str, **options: Any) -> LoadedModel:
    """Load ``NAME@N`` / ``NAME@alias`` / ``NAME`` safely; ``predict`` checks its inputs."""
    return _models().load(ref, **options)


def get(name: str) -> RegisteredModel:
    return _models().get(name)


def version(ref: str) -> ModelVersion:
    return _models().version(ref)


def set_alias(ref: str, alias: str, **options: Any) -> ModelVersion:
    """Point an alias at a version without a gate (recorded)."""
    return _models().set_alias(ref, alias, **options)


def promote(ref: str, alias: str = "champion", **options: Any) -> AliasEvent:
    """Move ``alias`` to ``ref`` through the gate (see ``ModelsClient.promote``)."""
    return _models().promote(ref, alias, **options)


def evaluate(model: Any, data: Any, **options: Any) -> Evaluation:
    """Evaluate a model on data; stored when the model is a registered version."""
    return _models().evaluate(model, data, **options)


def history(name: str, alias: str | None = None) -> list[AliasEvent]:
    return _models().history(name, alias)


def card(ref: str, **options: Any) -> Any:
    return _models().card(ref, **options)


def lineage(ref: str, **options: Any) -> dict[str, Any]:
    return _models().lineage(ref, **options)
