"""An MLflow model folder as an opsloop model package, when opsloop has a flavor that reads it.

The registry stores packages (a model file plus ``opsloop-model.json``) and loads them through
its flavors. An MLflow ``sklearn`` model saved with skops (MLflow 3's default) is exactly what
opsloop's ``sklearn`` flavor reads; one saved with pickle/cloudpickle is opsloop's ``pyfunc``
(loaded only when trusted, as opsloop's own pickles are); an ``onnx`` model is ``onnx``. The
MLflow files are kept as they are and ``opsloop-model.json`` is added, with the signature
translated from MLflow's. Any other model (a flavor opsloop lacks, no signature) is kept under
the registry's ``mlflow`` flavor, as the MLflow-compatible API keeps what MLflow's client
registers: its files are there for MLflow to load, and opsloop says it does not load them.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import yaml

from opsloop.registry.flavors import FLAVORS
from opsloop.registry.mlflow_package import requirement_lines
from opsloop.registry.mlflow_package import schema_from_mlflow
from opsloop.registry.package import META_FILE
from opsloop.registry.package import PackageMeta
from opsloop.registry.signature import Schema
from opsloop.registry.signature import Signature

__all__ = ["CannotPackage", "package_mlflow_model"]


class CannotPackage(Exception):
    """The MLflow model has no opsloop equivalent; the message says why (a reason for the
    closing table, not an error)."""


def package_mlflow_model(model_dir: Path, dest: Path) -> tuple[PackageMeta, str | None]:
    """Copy the MLflow model at ``model_dir`` into ``dest`` as an opsloop package; with the
    package's metadata, why it is kept as an MLflow model (not loadable by opsloop), if it is.
    """
    mlmodel_file = model_dir / "MLmodel"
    if not mlmodel_file.is_file():
        raise CannotPackage(f"no MLmodel file in {model_dir}")
    try:
        mlmodel = yaml.safe_load(mlmodel_file.read_text()) or {}
    except yaml.YAMLError as error:
        raise CannotPackage(f"unreadable MLmodel: {str(error).splitlines()[0]}") from None
    flavors: dict[str, Any] = mlmodel.get("flavors") or {}
    kept_as_mlflow = None
    try:
        flavor, model_file = _flavor(flavors)
        if not (model_dir / model_file).exists():
            raise CannotPackage(f"the MLmodel names {model_file!r} but the folder lacks it")
        signature = _signature(mlmodel.get("signature"))
    except CannotPackage as why:
        if "mlflow" not in FLAVORS:
            raise
        # opsloop keeps MLflow models it cannot load under its ``mlflow`` flavor: their files
        # are served to MLflow's client (the compatible API), never unpickled here.
        flavor, model_file, kept_as_mlflow = "mlflow", "MLmodel", str(why)
        signature = _signature_or_open(mlmodel.get("signature"))
    requirements_file = model_dir / "requirements.txt"
    text = requirements_file.read_text() if requirements_file.is_file() else ""
    python = str((flavors.get("python_function") or {}).get("python_version") or "")
    meta = PackageMeta(
        flavor=flavor,
        model_file=model_file,
        signature=signature,
        input_format="array" if signature.inputs.tensor is not None else "dataframe",
        requirements=requirement_lines(text),
        python=python or "unknown",
    )
    shutil.copytree(model_dir, dest)
    (dest / META_FILE).write_text(meta.model_dump_json(indent=2))
    return meta, kept_as_mlflow


def _flavor(flavors: dict[str, Any]) -> tuple[str, str]:
    sklearn = flavors.get("sklearn")
    if isinstance(sklearn, dict) and sklearn.get("pickled_model"):
        serialization = sklearn.get("serialization_format") or "cloudpickle"
        if sklearn.get("code"):
            raise CannotPackage("an sklearn model with its own code files")
        flavor = "sklearn" if serialization == "skops" else "pyfunc"
        return flavor, str(sklearn["pickled_model"])
    onnx = flavors.get("onnx")
    if isinstance(onnx, dict) and onnx.get("data"):
        return "onnx", str(onnx["data"])
    names = sorted(n for n in flavors if n != "python_function") or sorted(flavors)
    raise CannotPackage(
        f"MLflow flavor {', '.join(names) or 'none'} has no opsloop flavor "
        "(sklearn and onnx models are brought)"
    )


def _signature(raw: Any) -> Signature:
    if not isinstance(raw, dict) or not raw.get("inputs"):
        raise CannotPackage("the model has no signature (opsloop checks every input against one)")
    inputs = _schema(raw["inputs"])
    outputs = _schema(raw["outputs"]) if raw.get("outputs") else None
    return Signature(inputs=inputs, outputs=outputs)


def _signature_or_open(raw: Any) -> Signature:
    """The signature, or one of no columns where there is none opsloop can express."""
    try:
        return _signature(raw)
    except CannotPackage:
        return Signature(inputs=Schema(columns=[]))


def _schema(text: str) -> Schema:
    try:
        return schema_from_mlflow(text)
    except (ValueError, KeyError, TypeError) as why:
        raise CannotPackage(str(why) or "its signature is not MLflow's JSON") from None
