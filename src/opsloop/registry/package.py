"""Model packages: a folder that holds a model file, ``opsloop-model.json`` and
``requirements.txt``, stored in the blob store like any other files.

``opsloop-model.json`` says which flavor reads the model file, the signature the model was
trained with (inferred from example data), the task, the classes of a classifier, and the
exact versions of the packages it was saved with. ``load_package`` reads it back through the
flavor's safe loader and wraps the model so that every ``predict`` checks its input against the
signature first.
"""

from __future__ import annotations

import functools
import platform
import warnings
from importlib import metadata
from pathlib import Path
from typing import Any
from typing import Literal

from pydantic import BaseModel
from pydantic import ConfigDict
from pydantic import ValidationError

from opsloop.errors import InvalidInput
from opsloop.errors import PermissionDenied
from opsloop.registry.flavors import Flavor
from opsloop.registry.flavors import flavor_for
from opsloop.registry.flavors import get_flavor
from opsloop.registry.signature import Schema
from opsloop.registry.signature import Signature
from opsloop.registry.signature import coerce_input
from opsloop.registry.signature import infer_schema

__all__ = ["META_FILE", "LoadedModel", "PackageMeta", "load_package", "write_package"]

META_FILE = "opsloop-model.json"
REQUIREMENTS_FILE = "requirements.txt"
FORMAT_VERSION = 1


class PackageMeta(BaseModel):
    model_config = ConfigDict(frozen=True)

    format_version: int = FORMAT_VERSION
    flavor: str
    model_file: str
    signature: Signature
    task: Literal["classification", "regression"] | None = None
    classes: list[Any] | None = None
    input_format: Literal["dataframe", "array"] = "dataframe"
    requirements: list[str]
    python: str

    @classmethod
    def parse(cls, raw: bytes | str) -> PackageMeta:
        try:
            meta = cls.model_validate_json(raw)
        except ValidationError as exc:
            raise InvalidInput(f"{META_FILE} is not a valid opsloop package: {exc}") from exc
        if meta.format_version > FORMAT_VERSION:
            raise InvalidInput(
                f"this package was written by a newer opsloop (format {meta.format_version})"
            )
        get_flavor(meta.flavor)
        return meta


def _pinned(distributions: tuple[str, ...] | list[str]) -> list[str]:
    return [
        f"{name}=={_installed(name)}"
        for name in dict.fromkeys(distributions)
        if _installed(name) != "not installed"
    ]


def _task_of(model: Any) -> str | None:
    try:
        from sklearn.base import is_classifier
        from sklearn.base import is_regressor
    except ImportError:  # pragma: no cover - scikit-learn is a dependency
        return None
    try:
        if is_classifier(model):
            return "classification"
        if is_regressor(model):
            return "regression"
    except AttributeError:  # not a scikit-learn estimator: it has no estimator tags
        return None
    return None


def _default_inputs(model: Any) -> Schema:
    """A signature for a model saved without example data, from what it learned in ``fit``."""
    names = getattr(model, "feature_names_in_", None)
    if names is not None:
        return Schema(columns=[{"name": str(n), "type": "float"} for n in names])  # type: ignore[misc]
    count = getattr(model, "n_features_in_", None)
    if count is not None:
        return Schema(tensor={"dtype": "float64", "shape": [-1, int(count)]})  # type: ignore[arg-type]
    raise InvalidInput("pass example data (input_example=...) so the signature can be inferred")


def write_package(
    model: Any,
    folder: Path,
    *,
    flavor: str | None = None,
    input_example: Any = None,
    signature: Signature | None = None,
    task: str | None = None,
    requirements: list[str] | None = None,
    flavor_options: dict[str, Any] | None = None,
) -> PackageMeta:
    """Write ``model`` as a package into the empty or new ``folder``; return its metadata.

    Raises:
        InvalidInput: No safe flavor for the model (and none given), no way to infer the
            signature, example data of mixed types.
    """
    chosen: Flavor = get_flavor(flavor) if flavor else flavor_for(model)
    folder.mkdir(parents=True, exist_ok=True)
    chosen.save(model, folder / chosen.file_name, flavor_options)
    if signature is None:
        if input_example is not None:
            inputs = infer_schema(input_example)
            outputs = None
            try:
                example = coerce_input(input_example, inputs)
                if getattr(model, "feature_names_in_", None) is None and inputs.columns:
                    example = example.to_numpy()
                outputs = infer_schema(chosen.predict(model, example))
            except Exception:
                outputs = None
            signature = Signature(inputs=inputs, outputs=outputs)
        else:
            signature = Signature(inputs=_default_inputs(model))
    takes_frame = getattr(model, "feature_names_in_", None) is not None or chosen.name == "pyfunc"
    classes = getattr(model, "classes_", None)
    meta = PackageMeta(
        flavor=chosen.name,
        model_file=chosen.file_name,
        signature=signature,
        task=task or _task_of(model),  # type: ignore[arg-type]
        classes=[c.item() if hasattr(c, "item") else c for c in classes]
        if classes is not None
        else None,
        input_format="dataframe" if takes_frame and signature.inputs.columns else "array",
        requirements=_pinned([*chosen.packages, "pandas"]) + list(requirements or []),
        python=platform.python_version(),
    )
    (folder / META_FILE).write_text(meta.model_dump_json(indent=2))
    (folder / REQUIREMENTS_FILE).write_text("\n".join(meta.requirements) + "\n")
    return meta


class LoadedModel:
    """A model read from a package: ``predict`` checks inputs against the signature first.

    Example:
        >>> model = opsloop.models.load("churn@champion")
        >>> model.predict([{"age": 41, "plan": "pro"}])
        >>> model.raw            # the estimator itself
    """

    def __init__(self, raw: Any, meta: PackageMeta, ref: str | None = None) -> None:
        self.raw = raw
        self.meta = meta
        self.ref = ref
        self._flavor = get_flavor(meta.flavor)

    @property
    def signature(self) -> Signature:
        return self.meta.signature

    @property
    def classes(self) -> list[Any] | None:
        return self.meta.classes

    def prepare(self, data: Any) -> Any:
        """``data`` checked against the signature and shaped as the model takes it."""
        inputs = coerce_input(data, self.meta.signature.inputs)
        if self.meta.input_format == "array" and hasattr(inputs, "to_numpy"):
            return inputs.to_numpy()
        return inputs

    def predict(self, data: Any) -> Any:
        return self._flavor.predict(self.raw, self.prepare(data))

    def predict_prepared(self, inputs: Any) -> Any:
        """Predict on inputs already checked by :meth:`prepare` (a server's micro-batch)."""
        return self._flavor.predict(self.raw, inputs)

    def predict_proba(self, data: Any) -> Any:
        return self._flavor.predict_proba(self.raw, self.prepare(data))

    def predict_proba_prepared(self, inputs: Any) -> Any:
        """Probabilities on inputs already checked by :meth:`prepare` (the server logs them
        with each answer, so monitors need not load the model)."""
        return self._flavor.predict_proba(self.raw, inputs)

    def __repr__(self) -> str:
        inputs = self.signature.inputs.describe()
        return f"LoadedModel({self.ref or self.meta.flavor}, inputs: {inputs})"


def load_package(
    folder: Path,
    *,
    trusted: bool = False,
    trusted_types: list[str] | None = None,
    ref: str | None = None,
) -> LoadedModel:
    """Read the package in ``folder`` with its flavor's loader.

    Raises:
        PermissionDenied: A pyfunc (pickle) package without ``trusted=True``; a skops file with
            types outside the safe list and ``trusted_types``.
        InvalidInput: Not an opsloop package.
    """
    meta_path = folder / META_FILE
    if not meta_path.is_file():
        raise InvalidInput(f"{folder} holds no {META_FILE}; it is not an opsloop model package")
    meta = PackageMeta.parse(meta_path.read_bytes())
    flavor = get_flavor(meta.flavor)
    if flavor.needs_trust and not trusted:
        raise PermissionDenied(
            f"{ref or folder} is a {flavor.name} package: loading it runs pickled code. Pass "
            "trusted=True (--trusted) only if you trust whoever registered it"
        )
    _warn_on_drift(meta.requirements)
    raw = flavor.load(folder / meta.model_file, list(trusted_types or []))
    _check_signature(raw, meta, ref or str(folder))
    return LoadedModel(raw, meta, ref)


def _check_signature(raw: Any, meta: PackageMeta, where: str) -> None:
    """Refuse a package whose model was trained on other inputs than its signature declares."""
    inputs = meta.signature.inputs
    declared = [c.name for c in inputs.columns] if inputs.columns is not None else None
    learned = getattr(raw, "feature_names_in_", None)
    if learned is not None and declared is not None and list(map(str, learned)) != declared:
        raise InvalidInput(
            f"{where}: the model was trained on columns {list(map(str, learned))[:8]}, "
            f"but its signature declares {declared[:8]}"
        )
    count = getattr(raw, "n_features_in_", None)
    width = len(declared) if declared is not None else (inputs.tensor.shape[1:2] or [None])[0]  # type: ignore[union-attr]
    if isinstance(count, int) and width not in (None, -1) and count != width:
        raise InvalidInput(
            f"{where}: the model takes {count} features, but its signature declares {width}"
        )


@functools.cache
def _installed(name: str) -> str:
    """The installed version of a distribution (read once per process: it is slow)."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def _warn_on_drift(requirements: list[str]) -> None:
    """Warn when installed versions differ from the ones the package pins."""
    drift = []
    for line in requirements:
        name, _, pinned = line.partition("==")
        installed = _installed(name)
        if pinned and installed != pinned:
            drift.append(f"{name} {pinned} (installed: {installed})")
    if drift:
        warnings.warn(
            "the model was saved with " + ", ".join(drift) + "; predictions may differ",
            stacklevel=3,
        )
