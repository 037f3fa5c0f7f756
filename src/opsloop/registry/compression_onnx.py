"""``onnx-int8``: ONNX Runtime's dynamic quantization of an ONNX version, or of a scikit-learn
version converted with skl2onnx first.

Dynamic quantization stores the weights of MatMul and Gemm nodes as int8 and quantizes
activations on the fly; the ``ai.onnx.ml`` operators skl2onnx writes for linear models and
trees (LinearClassifier, TreeEnsemble...) have no int8 form and are kept as they are, so such
a model shrinks only by what the conversion itself saves (the result's notes say so). Networks
(an MLP) are where it pays.

The new package keeps the original's signature: a converted model takes the same named columns,
which its package hands over as one array (float64 or int64), cast to float32 by a ``Cast``
node at the graph's input. Its classes come from the original's package (the graph holds them
only as labels).
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

from opsloop.errors import InvalidInput
from opsloop.registry.compression_package import write_like
from opsloop.registry.package import META_FILE
from opsloop.registry.package import LoadedModel

__all__ = ["onnx_int8"]


def _no_advice(record: logging.LogRecord) -> bool:
    """Drop ONNX Runtime's "consider pre-processing" warning, which it logs on the root
    logger every call: its pre-processing fails on the ``ai.onnx.ml`` operators skl2onnx
    writes. Every other record passes (the filter sits on the root logger while one
    quantization runs, and other threads log meanwhile)."""
    return not record.getMessage().startswith("Please consider")


_QUANTIZED_OPS = ("MatMulInteger", "DynamicQuantizeLinear", "QGemm", "DynamicQuantizeMatMul")


def onnx_int8(original: LoadedModel, folder: Path, out: Path, sample: Any) -> list[str]:
    """Write the int8 package of ``original`` (read from ``folder``) into ``out``; the notes
    to show with the result. ``sample`` is rows the original takes (the input's dtype).

    Raises:
        InvalidInput: A flavor other than sklearn or onnx, skl2onnx or onnxruntime missing, a
            model skl2onnx cannot convert, inputs that are not numbers.
    """
    try:
        import onnx
        from onnxruntime.quantization import QuantType
        from onnxruntime.quantization import quantize_dynamic
    except ImportError as exc:
        raise InvalidInput(
            "onnx-int8 needs onnxruntime and onnx: pip install 'opsloop[onnx]'"
        ) from exc
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="opsloop-onnx-") as tmp:
        source = Path(tmp) / "float.onnx"
        if original.meta.flavor == "onnx":
            source.write_bytes((folder / original.meta.model_file).read_bytes())
        elif original.meta.flavor == "sklearn":
            source.write_bytes(_converted(original, sample).SerializeToString())
            notes.append("converted from scikit-learn with skl2onnx")
        else:
            raise InvalidInput(
                f"onnx-int8 takes scikit-learn and ONNX versions, not {original.meta.flavor}; "
                "a torch model takes dynamic-int8 or prune"
            )
        target = Path(tmp) / "int8.onnx"
        root = logging.getLogger()
        root.addFilter(_no_advice)
        try:
            quantize_dynamic(source, target, weight_type=QuantType.QInt8)
        finally:
            root.removeFilter(_no_advice)
        model = onnx.load(str(target))
    if not any(node.op_type in _QUANTIZED_OPS for node in model.graph.node):
        notes.append(
            "no MatMul or Gemm to quantize (ai.onnx.ml operators have no int8 form): the size "
            "changed by the conversion only"
        )
    meta = write_like(original, model, out, "onnx")
    kept = meta.model_copy(update={"classes": original.meta.classes})
    (out / META_FILE).write_text(kept.model_dump_json(indent=2))
    return notes


def _converted(original: LoadedModel, sample: Any) -> Any:
    """The scikit-learn model as an ONNX graph that takes what its package hands it."""
    import numpy as np

    try:
        from skl2onnx import to_onnx
        from skl2onnx.common.data_types import FloatTensorType
    except ImportError as exc:
        raise InvalidInput(
            "converting a scikit-learn model to ONNX needs skl2onnx: pip install skl2onnx"
        ) from exc
    given = np.asarray(original.prepare(sample.iloc[:1] if hasattr(sample, "iloc") else sample[:1]))
    if given.dtype.kind not in "fiu" or given.ndim != 2:
        raise InvalidInput(
            f"onnx-int8 converts models over numeric columns; this one takes {given.dtype} "
            f"rows of shape {list(given.shape)}"
        )
    try:
        graph = to_onnx(
            original.raw,
            initial_types=[("features", FloatTensorType([None, given.shape[1]]))],
            options={"zipmap": False},
        )
    except Exception as exc:  # skl2onnx raises many kinds for a model it cannot convert
        raise InvalidInput(
            f"skl2onnx cannot convert {type(original.raw).__name__}: {exc}".splitlines()[0]
        ) from exc
    return _cast_input(graph, given.dtype)


def _cast_input(graph: Any, dtype: Any) -> Any:
    """``graph`` with an input of ``dtype`` cast to the float32 its first node reads."""
    from onnx import TensorProto
    from onnx import helper

    if dtype.kind == "f" and dtype.itemsize == 4:
        return graph
    element = TensorProto.DOUBLE if dtype.kind == "f" else TensorProto.INT64
    old = graph.graph.input[0]
    width = old.type.tensor_type.shape.dim[1].dim_value
    new = helper.make_tensor_value_info("input", element, [None, width])
    cast = helper.make_node("Cast", ["input"], [old.name], to=TensorProto.FLOAT, name="cast_input")
    graph.graph.node.insert(0, cast)
    graph.graph.input.remove(old)
    graph.graph.input.insert(0, new)
    return graph
