"""How step outputs become files and back: DataFrames as Parquet, arrays as ``.npy``,
scikit-learn estimators through skops, JSON-able values as JSON, and anything else through a
materializer the user registers. Nothing is pickled by default: a step output is data another
process (a cached re-run, a reproduction, a colleague) can read safely.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from opsloop.errors import InvalidInput

__all__ = ["Materializer", "load", "register_materializer", "save"]


@dataclass(frozen=True)
class Materializer:
    kind: str
    suffix: str
    accepts: Callable[[Any], bool]
    save: Callable[[Any, Path], None]
    load: Callable[[Path], Any]


def _is_frame(value: Any) -> bool:
    return type(value).__module__.startswith("pandas") and hasattr(value, "to_parquet")


def _is_array(value: Any) -> bool:
    return type(value).__module__ == "numpy" and hasattr(value, "dtype")


def _is_estimator(value: Any) -> bool:
    return type(value).__module__.startswith("sklearn") or (
        hasattr(value, "get_params") and hasattr(value, "fit")
    )


def _is_json(value: Any) -> bool:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return False
    return True


def _save_frame(value: Any, path: Path) -> None:
    value.to_parquet(path)


def _load_frame(path: Path) -> Any:
    import pandas as pd

    return pd.read_parquet(path)


def _save_array(value: Any, path: Path) -> None:
    import numpy as np

    np.save(path, value, allow_pickle=False)


def _load_array(path: Path) -> Any:
    import numpy as np

    return np.load(path, allow_pickle=False)


def _save_estimator(value: Any, path: Path) -> None:
    from opsloop.registry.flavors import deterministic_skops
    from opsloop.registry.sklearn_imports import skops_io

    path.write_bytes(deterministic_skops(skops_io().dumps(value)))


def _load_estimator(path: Path) -> Any:
    from opsloop.registry.sklearn_imports import skops_io

    skops = skops_io()  # without the import walk that brings torch
    return skops.load(path, trusted=skops.get_untrusted_types(file=path))


def _save_package(value: Any, path: Path) -> None:
    from opsloop.registry.package import write_package

    write_package(value, path)


def _load_package(path: Path) -> Any:
    from opsloop.registry.package import load_package

    return load_package(path).raw


def _save_json(value: Any, path: Path) -> None:
    path.write_text(json.dumps(value))


def _load_json(path: Path) -> Any:
    return json.loads(path.read_text())


_REGISTRY: list[Materializer] = [
    Materializer("parquet", ".parquet", _is_frame, _save_frame, _load_frame),
    Materializer("npy", ".npy", _is_array, _save_array, _load_array),
    Materializer("skops", ".skops", _is_estimator, _save_estimator, _load_estimator),
    Materializer("json", ".json", _is_json, _save_json, _load_json),
    # a model package folder (flavor, signature, pins): chosen by @step(register=...), never
    # by the value's type, since it is what the model registry serves
    Materializer("package", "", lambda value: False, _save_package, _load_package),
]


def register_materializer(
    kind: str,
    accepts: Callable[[Any], bool],
    save: Callable[[Any, Path], None],
    load: Callable[[Path], Any],
    suffix: str = ".bin",
) -> None:
    """Teach pipelines to store a type: tried before the built-in materializers."""
    _REGISTRY.insert(0, Materializer(kind, suffix, accepts, save, load))


def save(value: Any, folder: Path, name: str, kind: str | None = None) -> tuple[Path, str]:
    """Write ``value`` as ``folder/name<suffix>`` with the first materializer that accepts it
    (or the one of ``kind``); the file (or folder) and the materializer's kind."""
    for materializer in _REGISTRY:
        if materializer.kind == kind or (kind is None and materializer.accepts(value)):
            path = folder / f"{name}{materializer.suffix}"
            materializer.save(value, path)
            return path, materializer.kind
    raise InvalidInput(
        f"step output {name!r} is a {type(value).__name__}, which no materializer stores: return "
        "a DataFrame, an array, a scikit-learn model or JSON-able data, or call "
        "opsloop.pipelines.materializers.register_materializer"
    )


def load(path: Path, kind: str) -> Any:
    for materializer in _REGISTRY:
        if materializer.kind == kind:
            return materializer.load(path)
    raise InvalidInput(f"no materializer {kind!r} is registered in this process")
