"""The compressed package: the new model written as its original's stand-in.

Every method (:mod:`~opsloop.registry.compression_onnx`,
:mod:`~opsloop.registry.compression_torch`) writes its result through :func:`write_like`, so
that the new version takes the same inputs and states the same task as the version it may
replace, whatever the flavor: a server, a monitor or a gate reads both alike.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from opsloop.registry.package import LoadedModel
from opsloop.registry.package import PackageMeta
from opsloop.registry.package import write_package

__all__ = ["write_like"]


def write_like(
    original: LoadedModel,
    model: Any,
    out: Path,
    flavor: str,
    flavor_options: dict[str, Any] | None = None,
) -> PackageMeta:
    """Write ``model`` as a ``flavor`` package into ``out`` with ``original``'s signature and
    task; its metadata."""
    return write_package(
        model,
        out,
        flavor=flavor,
        signature=original.signature,
        task=original.meta.task,
        flavor_options=flavor_options,
    )
