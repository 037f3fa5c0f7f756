"""Flavors: how a kind of model is written to files and read back, safely.

Loading a model must not run code that came from the store, so each flavor uses a format that
holds data, not programs: scikit-learn through skops (its loader rebuilds only types it is
told to trust), ONNX through onnxruntime (a graph, no Python at all), PyTorch and transformers
models as safetensors weights rebuilt by installed classes. The ``pyfunc`` flavor
pickles any Python object with a ``predict`` method; unpickling can run arbitrary code, so it
only loads with ``trusted=True``.

A flavor is a small class: ``save`` writes the model file, ``load`` reads it back, ``handles``
says whether it knows a live object, ``packages`` names the distributions a package pins.
A flavor's library is imported only when a model of that flavor is saved or loaded: nothing
here imports torch, onnxruntime or skops until it is asked to (see
:func:`~opsloop.registry.sklearn_imports.skops_io`).
"""

from __future__ import annotations

import importlib
import io
import json
import pickle
import re
import zipfile
from abc import ABC
from abc import abstractmethod
from pathlib import Path
from typing import Any
from typing import ClassVar

from opsloop.errors import InvalidInput
from opsloop.errors import PermissionDenied
from opsloop.registry.sklearn_imports import skops_io

__all__ = [
    "FLAVORS",
    "Flavor",
    "LoraAdapter",
    "deterministic_skops",
    "flavor_for",
    "get_flavor",
    "torch_module_class",
    "transformers_class",
]

# skops refuses types outside its default allow-list until told to trust them. Types defined by
# these libraries are library code (e.g. sklearn.tree._tree.Tree), never code from the package.
_SAFE_MODULE_ROOTS = ("sklearn", "numpy", "scipy")
_KNOWN_SAFE_TYPES = ("sklearn.tree._tree.Tree",)  # what tree ensembles hold


class Flavor(ABC):
    name: ClassVar[str]
    file_name: ClassVar[str]
    needs_trust: ClassVar[bool] = False
    packages: ClassVar[tuple[str, ...]] = ()

    @staticmethod
    @abstractmethod
    def handles(model: Any) -> bool: ...

    @abstractmethod
    def save(self, model: Any, path: Path, options: dict[str, Any] | None = None) -> None:
        """Write the model at ``path``; ``options`` are flavor-specific (see each flavor)."""

    @abstractmethod
    def load(self, path: Path, trusted_types: list[str]) -> Any: ...

    def predict(self, model: Any, inputs: Any) -> Any:
        return model.predict(inputs)

    def predict_proba(self, model: Any, inputs: Any) -> Any:
        if not hasattr(model, "predict_proba"):
            raise InvalidInput(f"this {self.name} model has no predict_proba")
        return model.predict_proba(inputs)


class SklearnFlavor(Flavor):
    name = "sklearn"
    file_name = "model.skops"
    packages = ("scikit-learn", "skops", "numpy", "scipy")

    @staticmethod
    def handles(model: Any) -> bool:
        return type(model).__module__.startswith("sklearn.") or hasattr(model, "_get_tags")

    def save(self, model: Any, path: Path, options: dict[str, Any] | None = None) -> None:
        path.write_bytes(deterministic_skops(skops_io().dumps(model)))

    def load(self, path: Path, trusted_types: list[str]) -> Any:
        skops = skops_io()
        from skops.io.exceptions import UntrustedTypesFoundException

        data = path.read_bytes()
        try:  # one parse for the usual estimators; the audit below only when it is needed
            return skops.loads(data, trusted=[*_KNOWN_SAFE_TYPES, *trusted_types])
        except UntrustedTypesFoundException:
            pass
        untrusted = skops.get_untrusted_types(data=data)
        refused = [
            t
            for t in untrusted
            if t.split(".")[0] not in _SAFE_MODULE_ROOTS and t not in trusted_types
        ]
        if refused:
            raise PermissionDenied(
                f"the model file uses types that are not trusted: {refused}; pass "
                "trusted_types=[...] naming them if you trust who registered this model",
                details={"untrusted_types": refused},
            )
        return skops.loads(data, trusted=untrusted or None)


class OnnxFlavor(Flavor):
    name = "onnx"
    file_name = "model.onnx"
    packages = ("onnxruntime", "numpy")

    @staticmethod
    def handles(model: Any) -> bool:
        return type(model).__name__ == "ModelProto" and type(model).__module__.startswith("onnx")

    def save(self, model: Any, path: Path, options: dict[str, Any] | None = None) -> None:
        path.write_bytes(model.SerializeToString())

    def load(self, path: Path, trusted_types: list[str]) -> Any:
        try:
            import onnxruntime
        except ImportError as exc:
            raise InvalidInput(
                "loading an ONNX model needs onnxruntime: pip install 'opsloop[onnx]'"
            ) from exc
        return onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])

    def _run(self, session: Any, inputs: Any) -> list[Any]:
        import numpy as np

        feed = {session.get_inputs()[0].name: np.asarray(inputs)}
        return session.run(None, feed)  # type: ignore[no-any-return]

    def predict(self, model: Any, inputs: Any) -> Any:
        return self._run(model, inputs)[0]

    def predict_proba(self, model: Any, inputs: Any) -> Any:
        import numpy as np

        outputs = self._run(model, inputs)
        if len(outputs) < 2:
            raise InvalidInput("this ONNX model has no probability output")
        probabilities = outputs[1]
        if isinstance(probabilities, list):  # skl2onnx's ZipMap: one dict per row
            keys = list(probabilities[0])
            return np.array([[row[k] for k in keys] for row in probabilities])
        return probabilities


class TorchFlavor(Flavor):
    """PyTorch modules as safetensors weights plus the name of their class.

    A plain ``nn.Module`` is saved as ``weights.safetensors`` and ``module.json`` (the class's
    import path and the keyword arguments that rebuild it, from ``flavor_options={"init":
    {...}}``); a transformers model through ``save_pretrained(safe_serialization=True)``, with
    its tokenizer beside it (``flavor_options={"tokenizer": tokenizer}``, in ``tokenizer/``),
    read back as the loaded model's ``tokenizer`` attribute (a causal LM needs it to serve).
    A peft LoRA model is saved as its adapter alone (``adapter_config.json`` and
    ``adapter_model.safetensors``, megabytes where the base is gigabytes) with the registered
    version of its base (``flavor_options={"base": "NAME@N"}``); it loads as a
    :class:`LoraAdapter`, which the registry applies to that base.
    Loading imports the named class from the *installed* code, refuses anything that is not an
    ``nn.Module`` (or a transformers ``PreTrainedModel``), and reads tensors only: nothing in
    the package is executed.
    """

    name = "pytorch"
    file_name = "model"
    packages = ("torch", "safetensors", "numpy")

    @staticmethod
    def handles(model: Any) -> bool:
        return any(c.__module__.startswith("torch.nn") for c in type(model).__mro__)

    def save(self, model: Any, path: Path, options: dict[str, Any] | None = None) -> None:
        cls = type(model)
        path.mkdir(parents=True, exist_ok=True)
        if hasattr(model, "save_pretrained") and hasattr(model, "config"):
            model.save_pretrained(path, safe_serialization=True)  # a peft model: the adapter
            spec = {"kind": "transformers", "class": cls.__name__}
            if cls.__module__.startswith("peft."):
                base = (options or {}).get("base")
                if not isinstance(base, str) or "@" not in base:
                    raise InvalidInput(
                        "a LoRA adapter is registered with the version of its base model: "
                        "flavor_options={'base': 'NAME@N'} (or register the merged model: "
                        "model.merge_and_unload())"
                    )
                spec = {"kind": "lora-adapter", "base": base}
            tokenizer = (options or {}).get("tokenizer")
            if tokenizer is not None:
                if not hasattr(tokenizer, "save_pretrained"):
                    raise InvalidInput(
                        "flavor_options['tokenizer'] must be a transformers tokenizer"
                    )
                tokenizer.save_pretrained(path / "tokenizer")
                spec["tokenizer"] = type(tokenizer).__name__
        else:
            from safetensors.torch import save_file

            if cls.__module__ == "__main__":
                raise InvalidInput(
                    f"{cls.__name__} is defined in __main__, so no other process can import it; "
                    "move the class into a module"
                )
            state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
            save_file(state, str(path / "weights.safetensors"))
            spec = {
                "kind": "module",
                "class": f"{cls.__module__}:{cls.__qualname__}",
                "init": dict((options or {}).get("init", {})),
            }
        (path / "module.json").write_text(json.dumps(spec, indent=2))

    def load(self, path: Path, trusted_types: list[str]) -> Any:
        spec = json.loads((path / "module.json").read_text())
        if spec["kind"] == "lora-adapter":
            return LoraAdapter(path, spec["base"], _tokenizer(path, spec))
        if spec["kind"] == "transformers":
            model = transformers_class(spec["class"]).from_pretrained(
                str(path), local_files_only=True, trust_remote_code=False, use_safetensors=True
            )
            if spec.get("tokenizer"):
                model.tokenizer = _tokenizer(path, spec)
        else:
            from safetensors.torch import load_file

            model = torch_module_class(spec["class"])(**spec.get("init", {}))
            model.load_state_dict(load_file(str(path / "weights.safetensors")))
        model.eval()
        return model

    def predict(self, model: Any, inputs: Any) -> Any:
        import numpy as np
        import torch

        with torch.no_grad():
            out = model(torch.as_tensor(np.asarray(inputs)))
        out = getattr(out, "logits", out)
        return out.detach().cpu().numpy()

    def predict_proba(self, model: Any, inputs: Any) -> Any:
        import numpy as np

        logits = self.predict(model, inputs)
        shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
        return shifted / shifted.sum(axis=-1, keepdims=True)


def transformers_class(name: str) -> Any:
    """The transformers model class ``name`` (``module.json``'s ``class``), refused unless it
    is one: a package names a class, and only an installed model class may be built from it.

    Raises:
        PermissionDenied: ``name`` is not a transformers ``PreTrainedModel`` class.
    """
    import transformers

    cls = getattr(transformers, name, None)
    if not isinstance(cls, type) or not issubclass(cls, transformers.PreTrainedModel):
        raise PermissionDenied(f"{name!r} is not a transformers model class")
    return cls


def torch_module_class(name: str) -> Any:
    """The installed class ``name`` (``"module:qualname"``, as ``module.json`` writes it),
    refused unless it is a ``torch.nn.Module``: the class a package names is imported from the
    installed code, never from the package, and only a module class may be built from it.

    Raises:
        InvalidInput: The module or the class is not importable here.
        PermissionDenied: The class is not a ``torch.nn.Module`` class.
    """
    import torch

    module_name, _, qualname = name.partition(":")
    try:
        found: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            found = getattr(found, part)
    except (ImportError, AttributeError) as exc:
        raise InvalidInput(f"the model's class {name} is not importable here: {exc}") from exc
    if not isinstance(found, type) or not issubclass(found, torch.nn.Module):
        raise PermissionDenied(f"{name} is not a torch.nn.Module class")
    return found


def _tokenizer(path: Path, spec: dict[str, Any]) -> Any:
    """The tokenizer saved beside a transformers model or adapter (None when there is none):
    data files only, a vocabulary, merges and a chat template."""
    if not spec.get("tokenizer"):
        return None
    import transformers

    kind = getattr(transformers, spec["tokenizer"], None)
    if not isinstance(kind, type) or not issubclass(kind, transformers.PreTrainedTokenizerBase):
        raise PermissionDenied(f"{spec['tokenizer']!r} is not a transformers tokenizer")
    return kind.from_pretrained(
        str(path / "tokenizer"), local_files_only=True, trust_remote_code=False
    )


class LoraAdapter:
    """A LoRA adapter read from a package: not a model until it is applied to its base, the
    registered version ``base`` (``ModelsClient.load`` does both)."""

    def __init__(self, path: Path, base: str, tokenizer: Any) -> None:
        self.path, self.base, self.tokenizer = path, base, tokenizer

    def apply(self, base_model: Any) -> Any:
        """``base_model`` with this adapter on it (peft's ``PeftModel``, for inference), and
        the adapter's tokenizer (its chat template) if it came with one."""
        from peft import PeftModel

        model = PeftModel.from_pretrained(base_model, str(self.path), is_trainable=False)
        if self.tokenizer is not None:
            model.tokenizer = self.tokenizer
        return model.eval()


class PyfuncFlavor(Flavor):
    """Any object with ``predict``, pickled. Loading runs pickled code: trusted packages only."""

    name = "pyfunc"
    file_name = "model.pkl"
    needs_trust = True
    packages = ("numpy", "pandas")

    @staticmethod
    def handles(model: Any) -> bool:
        return callable(getattr(model, "predict", None))

    def save(self, model: Any, path: Path, options: dict[str, Any] | None = None) -> None:
        try:
            path.write_bytes(pickle.dumps(model, protocol=5))
        except (pickle.PicklingError, TypeError, AttributeError) as exc:
            raise InvalidInput(f"cannot pickle the model: {exc}") from exc

    def load(self, path: Path, trusted_types: list[str]) -> Any:
        return pickle.loads(path.read_bytes())


class MlflowFlavor(Flavor):
    """An MLflow model directory (``MLmodel`` and the files its flavors wrote), registered
    through the MLflow-compatible API. opsloop stores and serves its files to MLflow's client
    but never loads it: its files are usually pickles, and reading them is MLflow's job."""

    name = "mlflow"
    file_name = "MLmodel"
    needs_trust = True

    @staticmethod
    def handles(model: Any) -> bool:
        return False  # never chosen for a live object: only MLflow's client writes these

    def save(self, model: Any, path: Path, options: dict[str, Any] | None = None) -> None:
        raise InvalidInput("log MLflow models with mlflow.<flavor>.log_model, not opsloop")

    def load(self, path: Path, trusted_types: list[str]) -> Any:
        raise InvalidInput(
            "this version is an MLflow model: opsloop keeps its files but does not load it; "
            "load it with mlflow.pyfunc.load_model('models:/NAME/VERSION') and "
            "MLFLOW_TRACKING_URI set to this server"
        )


FLAVORS: dict[str, Flavor] = {
    f.name: f
    for f in (SklearnFlavor(), OnnxFlavor(), TorchFlavor(), PyfuncFlavor(), MlflowFlavor())
}


def get_flavor(name: str) -> Flavor:
    """The flavor called ``name``; ``InvalidInput`` naming the known ones otherwise."""
    try:
        return FLAVORS[name]
    except KeyError:
        raise InvalidInput(f"unknown model flavor {name!r}; one of {sorted(FLAVORS)}") from None


def flavor_for(model: Any) -> Flavor:
    """The safe flavor for a live model object (never ``pyfunc``: that one is asked for)."""
    for flavor in (FLAVORS["sklearn"], FLAVORS["onnx"], FLAVORS["pytorch"]):
        if flavor.handles(model):
            return flavor
    raise InvalidInput(
        f"opsloop has no safe flavor for {type(model).__module__}.{type(model).__name__}; "
        "pass flavor='pyfunc' to pickle it (it will only load with trusted=True)"
    )


_SKOPS_ID = re.compile(r'"__id__": (\d+)|"(\d+)\.npy"')


def deterministic_skops(data: bytes) -> bytes:
    """A skops archive whose bytes depend only on the model: skops names objects by their
    ``id()`` in this process and stamps zip entries with the time, so the same model saved
    twice differed. Ids become 0, 1, 2... in the order the schema names them, entries are
    sorted and dated 1980-01-01. Equal models then get equal digests: a recomputed step is
    bit-for-bit identical and the steps after it stay cached."""
    source = zipfile.ZipFile(io.BytesIO(data))
    schema = source.read("schema.json").decode()
    renumbered: dict[str, str] = {}

    def number(match: re.Match[str]) -> str:
        old = match.group(1) or match.group(2)
        new = renumbered.setdefault(old, str(len(renumbered)))
        return f'"__id__": {new}' if match.group(1) else f'"{new}.npy"'

    schema = _SKOPS_ID.sub(number, schema)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as target:
        names = {}
        for name in source.namelist():
            stem = name.removesuffix(".npy")
            names[f"{renumbered.get(stem, stem)}.npy" if name.endswith(".npy") else name] = name
        for name in sorted(names):
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            body = schema.encode() if name == "schema.json" else source.read(names[name])
            target.writestr(info, body)
    return out.getvalue()
