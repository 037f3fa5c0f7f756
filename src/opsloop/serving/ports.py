"""What serving uses from other domains, declared here and handed in.

Deploying resolves a model reference to its version, the runtime loads the versions a
deployment serves, and batch inference reads a data version and writes its result as a new one.
Those belong to the registry and data domains. Serving does not take the whole ``Client`` to
reach them: it names the few methods it calls, and whoever assembles the application (the
``Client``, the server) hands in objects that have them. The SDK's own ``client.models`` and
``client.data`` satisfy these protocols.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING
from typing import Protocol

if TYPE_CHECKING:
    from opsloop.data.sdk import AddResult
    from opsloop.data.sdk import DataVersion
    from opsloop.registry.entities import ModelVersion
    from opsloop.registry.package import LoadedModel

__all__ = ["DataSource", "ModelSource"]


class ModelSource(Protocol):
    """Registered model versions: resolved when deploying, loaded to answer and to score."""

    def version(self, ref: str) -> ModelVersion:
        """The record of ``ref`` (``NAME@N``, ``NAME@alias``, ``NAME``): its name and number.
        Raises ``NotFound`` if there is no such version."""
        ...

    def load(self, ref: str) -> LoadedModel:
        """The model version ``ref`` loaded with its flavor's safe loader. Raises ``NotFound``
        if there is no such version."""
        ...


class DataSource(Protocol):
    """Dataset versions: the input of a batch inference and the version it writes."""

    def get(self, ref: str) -> DataVersion:
        """A handle on the data version ``ref`` (its table format, files, local path).
        Raises ``NotFound`` if there is none."""
        ...

    def add(
        self, path: str | os.PathLike[str], name: str, *, message: str | None = None
    ) -> AddResult:
        """Version the file at ``path`` as the next version of ``name``."""
        ...
