"""What monitoring reads from other domains, declared here and handed in.

Creating a monitor scores its reference data version with the deployment's stable model, and a
check scores its window with the model versions that answered it; both read the deployment's
prediction log. Those belong to the registry, serving and data domains. Monitoring does not take
the whole ``Client`` to reach them: it names the few methods it calls, and whoever assembles the
application hands in objects that have them. The SDK's own ``client.models``,
``client.deployments`` and ``client.data`` satisfy these protocols, and so does the prediction
log (locally the ``Client`` hands a ``PredictionReader`` over the log's folder, which opens no
journal; on a server, its serving runtime's ``PredictionLog``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from typing import Any
from typing import Protocol

if TYPE_CHECKING:
    from opsloop.data.sdk import DataVersion
    from opsloop.registry.entities import ModelVersion
    from opsloop.registry.package import LoadedModel
    from opsloop.serving.entities import Deployment

__all__ = ["DataSource", "DeploymentSource", "ModelSource", "PredictionSource", "Sources"]


class ModelSource(Protocol):
    """Registered model versions: loaded to score data, described for their task."""

    def load(self, ref: str) -> LoadedModel:
        """The model version ``ref`` (``NAME@N``) loaded with its flavor's safe loader;
        ``NotFound`` if there is no such version."""
        ...

    def version(self, ref: str) -> ModelVersion:
        """The record of the model version ``ref`` (its ``task`` among others);
        ``NotFound`` if there is no such version."""
        ...


class DeploymentSource(Protocol):
    """Deployments: which model versions a deployment serves."""

    def get(self, name: str) -> Deployment:
        """The deployment ``name`` with its traffic policy; ``NotFound`` if there is none."""
        ...


class DataSource(Protocol):
    """Dataset versions: the reference data a monitor is profiled on."""

    def get(self, ref: str) -> DataVersion:
        """A handle on the data version ``ref`` (``NAME@N``); ``NotFound`` if there is none."""
        ...


class PredictionSource(Protocol):
    """The prediction log: what a deployment answered, with the ground truth joined later."""

    def requests(
        self, deployment: str, *, since_ms: int | None = None, until_ms: int | None = None,
        last: int | None = None, first: int | None = None,
    ) -> Any:  # fmt: skip
        """Answered requests of ``deployment`` with ``since_ms <= ts_ms < until_ms``, oldest
        first, labels joined (a pandas DataFrame): all of them, the newest ``last`` or the
        oldest ``first``."""
        ...

    def request_columns(
        self, deployment: str, *, since_ms: int | None = None, until_ms: int | None = None,
        last: int | None = None, first: int | None = None,
    ) -> dict[str, list[Any]]:  # fmt: skip
        """The rows ``requests`` gives, as Python lists by column name (what a check reads:
        neither pandas nor pyarrow)."""
        ...


class Sources(Protocol):
    """The three sources together, as one object offers them: the ``Client``, and on a server
    the client its serving runtime reads deployments and models through."""

    @property
    def models(self) -> ModelSource: ...

    @property
    def deployments(self) -> DeploymentSource: ...

    @property
    def data(self) -> DataSource: ...
