"""An MLflow model directory as an opsloop package, without loading the model.

A version registered through the MLflow-compatible API holds the directory MLflow's client
uploaded (``MLmodel``, ``model.pkl`` or ``model.skops``, ``requirements.txt``, ``conda.yaml``,
``python_env.yaml``...) plus the ``opsloop-model.json`` every opsloop package has, written here
from what ``MLmodel`` declares: the ``mlflow`` flavor (so opsloop never unpickles it, see
:class:`~opsloop.registry.flavors.MlflowFlavor`), the signature translated to opsloop's types,
the pinned requirements and the Python version. The files MLflow wrote are untouched, so
MLflow's client downloads exactly what it uploaded.
"""

from __future__ import annotations

import json
from typing import Any

from opsloop.errors import InvalidInput
from opsloop.registry.package import META_FILE
from opsloop.registry.package import REQUIREMENTS_FILE
from opsloop.registry.package import PackageMeta
from opsloop.registry.signature import ColumnSpec
from opsloop.registry.signature import Schema
from opsloop.registry.signature import Signature
from opsloop.registry.signature import TensorSpec
from opsloop.store.blobs import BlobStore

__all__ = [
    "MLMODEL_FILE",
    "mlflow_flavors",
    "requirement_lines",
    "schema_from_mlflow",
    "with_opsloop_meta",
]

MLMODEL_FILE = "MLmodel"
_COLUMN_TYPES = {
    "double": "float",
    "float": "float",
    "long": "integer",
    "integer": "integer",
    "boolean": "boolean",
    "string": "string",
    "datetime": "datetime",
}
_UNKNOWN = Schema(columns=[])  # MLmodel declared no signature, or one opsloop cannot express


def schema_from_mlflow(raw: Any) -> Schema:
    """opsloop's schema for MLflow's signature JSON (a list of column or tensor specs).

    Raises:
        ValueError: Not MLflow's JSON, or a column type opsloop has no type for (the message
            says which).
    """
    try:
        specs = json.loads(raw) if isinstance(raw, str) else raw
    except json.JSONDecodeError:
        raise ValueError("its signature is not MLflow's JSON") from None
    if not isinstance(specs, list) or not specs:
        raise ValueError("its signature is not MLflow's JSON")
    if len(specs) == 1 and specs[0].get("type") == "tensor":
        tensor = specs[0].get("tensor-spec") or {}
        return Schema(tensor=TensorSpec(dtype=str(tensor["dtype"]), shape=list(tensor["shape"])))
    columns = []
    for position, spec in enumerate(specs):
        kind = _COLUMN_TYPES.get(str(spec.get("type")))
        if kind is None:
            raise ValueError(f"signature column type {spec.get('type')!r} has no opsloop type")
        columns.append(
            ColumnSpec(
                name=str(spec.get("name", position)),
                type=kind,  # type: ignore[arg-type]
                nullable=not spec.get("required", True),
            )
        )
    return Schema(columns=columns)


def requirement_lines(text: str) -> list[str]:
    """The requirements of an MLflow ``requirements.txt`` (no comments, no pip options)."""
    return [
        line.strip()
        for line in text.splitlines()
        if line.strip() and not line.lstrip().startswith(("#", "-"))
    ]


def _readable_schema(raw: Any) -> Schema | None:
    """The schema, or None where MLmodel declares none or one opsloop cannot read."""
    if not raw:
        return None
    try:
        return schema_from_mlflow(raw)
    except (ValueError, KeyError, TypeError):
        return None


def _parse_mlmodel(raw: bytes) -> dict[str, Any]:
    import yaml

    try:
        found = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        raise InvalidInput(f"{MLMODEL_FILE} is not valid YAML: {exc}") from exc
    if not isinstance(found, dict) or not isinstance(found.get("flavors"), dict):
        raise InvalidInput(f"{MLMODEL_FILE} declares no flavors: it is not an MLflow model")
    return found


def _meta(mlmodel: dict[str, Any], requirements: list[str]) -> PackageMeta:
    signature = mlmodel.get("signature") or {}
    inputs = _readable_schema(signature.get("inputs")) or _UNKNOWN
    outputs = _readable_schema(signature.get("outputs"))
    pyfunc = mlmodel["flavors"].get("python_function") or {}
    return PackageMeta(
        flavor="mlflow",
        model_file=MLMODEL_FILE,
        signature=Signature(inputs=inputs, outputs=outputs),
        requirements=requirements,
        python=str(pyfunc.get("python_version") or "unknown"),
    )


def mlflow_flavors(blobs: BlobStore, files: list[tuple[str, str, int]]) -> list[str]:
    """The flavors the directory's ``MLmodel`` declares (``python_function``, ``sklearn``...)."""
    digest = {path: d for path, d, _ in files}.get(MLMODEL_FILE)
    if digest is None:
        return []
    return sorted(_parse_mlmodel(blobs.read_bytes(digest))["flavors"])


def with_opsloop_meta(
    blobs: BlobStore, files: list[tuple[str, str, int]], where: str
) -> list[tuple[str, str, int]]:
    """``files`` (an MLflow model directory in the blob store) plus an ``opsloop-model.json``
    written from its ``MLmodel``; an opsloop package (it has one already) as it is.

    Raises:
        InvalidInput: No ``MLmodel`` among the files, or one that is not an MLflow model's.
    """
    by_path = {path: digest for path, digest, _ in files}
    if META_FILE in by_path:
        return files
    if MLMODEL_FILE not in by_path:
        shown = sorted(by_path)[:5]
        raise InvalidInput(f"{where} holds no {MLMODEL_FILE} (found {shown}): not an MLflow model")
    mlmodel = _parse_mlmodel(blobs.read_bytes(by_path[MLMODEL_FILE]))
    requirements: list[str] = []
    if REQUIREMENTS_FILE in by_path:
        text = blobs.read_bytes(by_path[REQUIREMENTS_FILE]).decode("utf-8", "replace")
        requirements = requirement_lines(text)
    data = _meta(mlmodel, requirements).model_dump_json(indent=2).encode()
    digest = blobs.put_bytes(data)
    return [*files, (META_FILE, digest, len(data))]
