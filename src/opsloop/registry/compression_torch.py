"""``dynamic-int8`` and ``prune``: the torch methods (the ``llm`` extra). Imported only when one
of them runs, or when a dynamic-int8 package is loaded: torch stays optional.

``dynamic-int8`` is ``torch.ao.quantization.quantize_dynamic`` over ``nn.Linear`` with
per-channel int8 weights (GPT-2's ``Conv1D``, a Linear stored transposed, is turned into one
first). A quantized Linear keeps its weights packed for the CPU kernels, which neither
safetensors nor ``save_pretrained`` can write, so the result is a :class:`DynamicInt8Model`: an
installed module that rebuilds the float model from its class and config (the ``pytorch``
flavor's ``init``), quantizes it, and reads and writes its int8 weights, scales and zero points
as plain safetensors tensors. Nothing in the package is code, as for every torch package.

``prune`` zeroes the smallest-magnitude fraction ``amount`` of each Linear (and Conv1D) weight
(``torch.nn.utils.prune.l1_unstructured``), made permanent with ``prune.remove``; an output
layer tied to the input embeddings is left alone (pruning it would prune the embeddings). The
weights are stored dense, so the package does not shrink: the sparsity is what to read.
"""

from __future__ import annotations

import copy
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from opsloop.errors import InvalidInput
from opsloop.registry.compression_package import write_like
from opsloop.registry.flavors import torch_module_class
from opsloop.registry.flavors import transformers_class
from opsloop.registry.package import LoadedModel

__all__ = ["DynamicInt8Model", "dynamic_int8", "prune_weights", "torch_spec"]


def torch_spec(raw: Any, spec: dict[str, Any]) -> dict[str, Any]:
    """How to rebuild the float model empty: its transformers class and config, or its
    module class and constructor arguments (``spec`` is the package's ``module.json``)."""
    if spec["kind"] == "transformers":
        return {"kind": "transformers", "class": spec["class"], "config": raw.config.to_dict()}
    if spec["kind"] == "module":
        return {"kind": "module", "class": spec["class"], "init": dict(spec.get("init", {}))}
    raise InvalidInput(
        "a LoRA adapter is compressed as a merged version: register model.merge_and_unload()"
    )


def _build_float(base: dict[str, Any]) -> nn.Module:
    """The float model ``base`` names, with fresh weights; only installed classes, checked as
    the ``pytorch`` flavor checks them."""
    if base["kind"] == "transformers":
        cls = transformers_class(base["class"])
        return cls(cls.config_class.from_dict(base["config"]))
    return torch_module_class(base["class"])(**base.get("init", {}))


def _linearized(model: nn.Module) -> nn.Module:
    """``model`` with transformers' ``Conv1D`` layers replaced by the ``nn.Linear`` they are."""
    try:
        from transformers.pytorch_utils import Conv1D
    except ImportError:
        return model
    for name, child in list(model.named_modules()):
        if isinstance(child, Conv1D):
            linear = nn.Linear(child.weight.shape[0], child.nf)
            linear.weight = nn.Parameter(child.weight.detach().t().contiguous())
            linear.bias = nn.Parameter(child.bias.detach().clone())
            parent, _, attribute = name.rpartition(".")
            setattr(model.get_submodule(parent) if parent else model, attribute, linear)
    return model


def _quantized(model: nn.Module) -> nn.Module:
    from torch.ao.quantization import per_channel_dynamic_qconfig
    from torch.ao.quantization import quantize_dynamic

    with warnings.catch_warnings():  # torch.ao.quantization warns that torchao will replace it
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)
        return quantize_dynamic(
            model.eval(), {nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8
        )


def _packed(model: nn.Module) -> dict[str, Any]:
    from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear

    return {n: m for n, m in model.named_modules() if isinstance(m, DynamicLinear)}


class DynamicInt8Model(nn.Module):
    """A model with dynamically quantized Linear layers, stored as plain tensors.

    Args:
        base: The float model, as :func:`torch_spec` describes it (JSON: it is the package's
            ``init``).
        model: The float model to quantize (when compressing); None builds ``base`` empty, to
            load the int8 weights into (when loading).

    Example:
        >>> DynamicInt8Model(torch_spec(model, spec), model)(input_ids).logits
    """

    def __init__(self, base: dict[str, Any], model: nn.Module | None = None) -> None:
        super().__init__()
        float_model = _build_float(base) if model is None else copy.deepcopy(model)
        self.model = _quantized(_linearized(float_model))

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self.model(*args, **kwargs)

    def state_dict(self, *args: Any, **kwargs: Any) -> dict[str, torch.Tensor]:  # type: ignore[override]
        """Plain tensors: each quantized layer's int8 weight, per-channel scales and zero
        points and its bias; every other tensor as the float model has it."""
        packed = _packed(self.model)
        state = {
            key: value
            for key, value in self.model.state_dict().items()
            if isinstance(value, torch.Tensor) and not _inside(key, packed)
        }
        for name, layer in packed.items():
            weight, bias = layer._packed_params._weight_bias()
            state[f"{name}.weight_int8"] = weight.int_repr()
            state[f"{name}.weight_scales"] = weight.q_per_channel_scales()
            state[f"{name}.weight_zero_points"] = weight.q_per_channel_zero_points()
            if bias is not None:
                state[f"{name}.bias"] = bias.detach()
        return state

    def load_state_dict(  # type: ignore[override]
        self, state_dict: dict[str, torch.Tensor], strict: bool = True, assign: bool = False
    ) -> None:
        """Read what :meth:`state_dict` wrote; any tensor missing or left over is an
        ``InvalidInput`` (always strict: a partial int8 model would answer garbage)."""
        packed = _packed(self.model)
        for name, layer in packed.items():
            try:
                weight = torch._make_per_channel_quantized_tensor(
                    state_dict[f"{name}.weight_int8"],
                    state_dict[f"{name}.weight_scales"],
                    state_dict[f"{name}.weight_zero_points"],
                    0,
                )
            except KeyError as exc:
                raise InvalidInput(f"the int8 weights lack {exc.args[0]}") from None
            layer.set_weight_bias(weight, state_dict.get(f"{name}.bias"))
        expected = {
            key
            for key, value in self.model.state_dict().items()
            if isinstance(value, torch.Tensor) and not _inside(key, packed)
        }
        given = {key for key in state_dict if not _inside(key, packed)}
        if expected != given:
            raise InvalidInput(
                f"the int8 weights do not fit the model: missing {sorted(expected - given)[:5]}, "
                f"unexpected {sorted(given - expected)[:5]}"
            )
        tensors = dict(self.model.named_parameters(remove_duplicate=False))
        tensors.update(self.model.named_buffers(remove_duplicate=False))
        with torch.no_grad():
            for key in expected:
                tensors[key].copy_(state_dict[key])


def _inside(key: str, packed: dict[str, Any]) -> bool:
    return any(key.startswith(f"{name}.") for name in packed)


def dynamic_int8(original: LoadedModel, spec: dict[str, Any], out: Path) -> list[str]:
    """Write the dynamic-int8 package of ``original`` into ``out``; the notes to show."""
    base = torch_spec(original.raw, spec)
    quantized = DynamicInt8Model(base, original.raw)
    layers = len(_packed(quantized.model))
    if layers == 0:
        raise InvalidInput("the model has no Linear layer: dynamic-int8 has nothing to quantize")
    write_like(original, quantized, out, "pytorch", {"init": {"base": base}})
    notes = [f"{layers} Linear layer(s) quantized to int8 (per channel)"]
    if getattr(original.raw, "tokenizer", None) is not None:
        notes.append(
            "the int8 version is a plain torch module: it predicts logits, but carries no "
            "tokenizer, so the gateway cannot serve it"
        )
    return notes


def prune_weights(
    original: LoadedModel, spec: dict[str, Any], out: Path, amount: float
) -> tuple[float, list[str]]:
    """Write the pruned package of ``original`` into ``out``; the sparsity of the pruned
    weights and the notes to show."""
    from torch.nn.utils import prune

    torch_spec(original.raw, spec)  # a LoRA adapter is refused here, as by dynamic-int8
    model = copy.deepcopy(original.raw)
    embeddings = model.get_input_embeddings() if hasattr(model, "get_input_embeddings") else None
    tied = getattr(embeddings, "weight", None)
    kinds: tuple[type, ...] = (nn.Linear,)
    try:
        from transformers.pytorch_utils import Conv1D

        kinds = (nn.Linear, Conv1D)
    except ImportError:
        pass
    notes: list[str] = []
    zeros = total = 0
    for name, layer in model.named_modules():
        if not isinstance(layer, kinds):
            continue
        if tied is not None and layer.weight is tied:
            notes.append(f"{name} is tied to the input embeddings: left unpruned")
            continue
        prune.l1_unstructured(layer, "weight", amount=amount)
        prune.remove(layer, "weight")
        zeros += int((layer.weight == 0).sum())
        total += layer.weight.numel()
    if total == 0:
        raise InvalidInput("the model has no Linear layer to prune")
    options: dict[str, Any] = {"init": dict(spec.get("init", {}))}
    tokenizer = getattr(original.raw, "tokenizer", None)
    if tokenizer is not None:
        options["tokenizer"] = tokenizer
    write_like(original, model, out, "pytorch", options)
    notes.append("weights are stored dense: the package does not shrink, read the sparsity")
    return zeros / total, notes
