"""Compression: a smaller version of a model, registered with lineage to the original, measured
against it, and judged by a gate that says whether it may replace it.

``compress`` runs where the blobs are, like a promotion (in-process for the embedded store, on
the server for a shared one), over a ``Store`` rather than a session: it loads the original
package, writes the compressed one (:mod:`~opsloop.registry.compression_onnx` or
:mod:`~opsloop.registry.compression_torch`), puts its files in the blob store, and measures
both versions (:mod:`~opsloop.registry.compression_measure`) before one write transaction
registers the new version, links it, records the measurements as its evaluation and, with an
``alias``, records the gate's decision about it (moving it only on a pass).

The new version says where it came from three ways: the tags ``compressed_from`` (NAME@N),
``compression.method`` and ``compression.settings``; the lineage edge
``original --compressed--> new``; and the evaluation (task ``compression``) that holds every
number measured.
"""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path
from typing import Any

from opsloop.data import versions as data_versions
from opsloop.data.transfer import verify_copy
from opsloop.errors import InvalidInput
from opsloop.kernel.refs import check_alias
from opsloop.lineage import graph
from opsloop.registry import aliases
from opsloop.registry import models
from opsloop.registry import versions
from opsloop.registry.compression_measure import judge
from opsloop.registry.compression_measure import latency_ms
from opsloop.registry.compression_measure import quality_drop
from opsloop.registry.compression_measure import quality_metric
from opsloop.registry.compression_measure import sample_rows
from opsloop.registry.compression_schemas import TORCH_METHODS
from opsloop.registry.compression_schemas import CompressionRequest
from opsloop.registry.compression_schemas import CompressionResult
from opsloop.registry.compression_schemas import QualityDelta
from opsloop.registry.compression_schemas import check_request
from opsloop.registry.entities import ModelVersion
from opsloop.registry.evaluations import record_evaluation
from opsloop.registry.models import MODEL_VERSION
from opsloop.registry.package import LoadedModel
from opsloop.registry.package import load_package
from opsloop.registry.promotion import PromotionContext
from opsloop.store.blobs import BlobStore

__all__ = ["COMPRESSED", "compress"]

COMPRESSED = "compressed"  # the lineage relation original --compressed--> new


def compress(
    context: PromotionContext, ref: str, request: CompressionRequest, *, created_by: str
) -> CompressionResult:
    """Compress the version ``ref`` with ``request.method`` into the model's next version.

    Raises:
        InvalidInput: A bad request (see :func:`check_request`), a method that does not fit the
            model's flavor (a torch method on scikit-learn, onnx-int8 on torch), the ``llm``
            extra missing for a torch method, a data version that is not a table or lacks the
            target column, quality asked of a model that states no task.
        NotFound: The version, the data version.
        Conflict: ``alias`` moved while the versions were measured; a package file missing
            from the blob store.
        PermissionDenied: A package that cannot be loaded safely (pickled).
    """
    request = check_request(request)
    if request.alias is not None:
        check_alias(request.alias)
    with context.store.read() as session:
        original, manifest = versions.manifest_of(session, ref)
        holder = None
        if request.alias is not None:
            holder = models.get_model(session, original.name).aliases.get(request.alias)
        data_ref = None
        if request.data is not None:
            data_ref = data_versions.get_version(session, request.data).ref
    _check_flavor(request.method, original)
    folder = context.local_copy(manifest, f"packages/{original.package_id}", original.ref)
    verify_copy(folder, manifest)
    loaded = load_package(folder, ref=original.ref)
    frame = context.load_table(data_ref) if data_ref is not None else None
    task = _task(loaded)
    if frame is not None and task is None:
        raise InvalidInput(
            f"{original.ref} states no task (classification or regression) and is not a causal "
            "LM: there is no quality to measure on --data"
        )
    tokenizer = getattr(loaded.raw, "tokenizer", None)
    if task == "lm" and tokenizer is None and frame is not None:
        raise InvalidInput(f"{original.ref} has no tokenizer: its loss on text cannot be measured")
    features = texts = None
    if frame is not None:
        if request.target not in frame.columns:
            raise InvalidInput(
                f"{data_ref} has no column {request.target!r}; it has {list(frame.columns)[:10]}"
            )
        if task == "lm":
            texts = frame[request.target]
        else:
            features = frame.drop(columns=[request.target])
    batch = sample_rows(loaded, features, tokenizer, texts)
    with tempfile.TemporaryDirectory(prefix="opsloop-compress-") as tmp:
        out = Path(tmp) / "package"
        sparsity, notes = _write(request, loaded, folder, out, batch)
        files = _store(context.blobs, out)
        compressed = load_package(out, ref=f"{original.ref} ({request.method})")
    one_row = batch.iloc[:1] if hasattr(batch, "iloc") else batch[:1]
    latency = latency_ms(loaded, compressed, one_row, batch)
    quality = None
    if frame is not None:
        quality = _quality(loaded, compressed, task, frame, request, data_ref, tokenizer)
    compressed_bytes = sum(size for _, _, size in files)
    size_ratio = original.total_bytes / compressed_bytes
    verdict = judge(
        size_ratio,
        None if quality is None else quality.drop,
        min_size_ratio=request.min_size_ratio,
        max_quality_drop=request.max_quality_drop,
    )
    settings = _settings(request)
    tags = {
        "compressed_from": original.ref,
        "compression.method": request.method,
        "compression.settings": json.dumps(settings, sort_keys=True),
    }
    description = request.description or f"{request.method} of {original.ref}"
    with context.store.write() as session:
        version = versions.create_version(
            session,
            context.blobs,
            original.name,
            files,
            created_by=created_by,
            source=f"compressed:{original.ref}",
            description=description,
            tags=tags,
        )
        graph.add_edge(
            session,
            (MODEL_VERSION, original.version_id),
            (MODEL_VERSION, version.version_id),
            COMPRESSED,
        )
        report = _report(
            original, request, settings, size_ratio, latency, quality, sparsity, verdict
        )
        evaluation = record_evaluation(
            session, report, created_by=created_by, model_ref=version.ref, dataset_ref=data_ref
        )
        event = None
        if request.alias is not None:
            passed = bool(verdict["passed"])
            event = aliases.move_alias(
                session,
                version.ref,
                request.alias,
                kind="promoted" if passed else "rejected",
                moved=passed,
                created_by=created_by,
                reason=f"{request.method} of {original.ref}: the compression gate "
                + ("passed" if passed else "failed"),
                verdict=verdict,
                expected_from=holder,
            )
            version = versions.get_version(session, version.ref)  # with the alias, if moved
    return CompressionResult(
        version=version,
        original=original.ref,
        method=request.method,
        settings=settings,
        original_bytes=original.total_bytes,
        compressed_bytes=compressed_bytes,
        size_ratio=round(size_ratio, 4),
        latency_ms=latency,
        batch_rows=len(batch),
        quality=quality,
        sparsity=None if sparsity is None else round(sparsity, 4),
        verdict=verdict,
        alias_event=event,
        evaluation_id=evaluation.evaluation_id,
        notes=notes,
    )


def _check_flavor(method: str, original: ModelVersion) -> None:
    """A method that cannot take the version's flavor, refused before anything is loaded."""
    if method in TORCH_METHODS:
        if original.flavor != "pytorch":
            hint = " (try onnx-int8)" if original.flavor in ("sklearn", "onnx") else ""
            raise InvalidInput(
                f"{method} compresses torch models; {original.ref} is a {original.flavor} "
                f"model{hint}"
            )
        try:
            import torch  # noqa: F401 - the llm extra: checked before any work
        except ImportError:
            raise InvalidInput(f"{method} needs torch: pip install 'opsloop[llm]'") from None
    elif original.flavor not in ("sklearn", "onnx"):
        raise InvalidInput(
            f"onnx-int8 compresses scikit-learn and ONNX models; {original.ref} is a "
            f"{original.flavor} model (try dynamic-int8)"
        )


def _task(loaded: LoadedModel) -> str | None:
    """classification, regression, ``lm`` (a causal LM: quality is its next-token loss) or
    None when the package states none."""
    can_generate = getattr(loaded.raw, "can_generate", None)
    if callable(can_generate) and can_generate():
        return "lm"
    return loaded.meta.task


def _write(
    request: CompressionRequest, loaded: LoadedModel, folder: Path, out: Path, sample: Any
) -> tuple[float | None, list[str]]:
    """Write the compressed package into ``out``; its sparsity (prune) and notes."""
    if request.method == "onnx-int8":
        from opsloop.registry.compression_onnx import onnx_int8

        return None, onnx_int8(loaded, folder, out, sample)
    from opsloop.registry.compression_torch import dynamic_int8
    from opsloop.registry.compression_torch import prune_weights

    spec = json.loads((folder / loaded.meta.model_file / "module.json").read_text())
    if request.method == "dynamic-int8":
        return None, dynamic_int8(loaded, spec, out)
    assert request.amount is not None  # check_request gives prune its default
    return prune_weights(loaded, spec, out, request.amount)


def _store(blobs: BlobStore, folder: Path) -> list[tuple[str, str, int]]:
    """Put the package's files in the blob store; their ``[path, digest, size]`` rows."""
    rows = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest = blobs.put_file(path)
        rows.append((path.relative_to(folder).as_posix(), digest, path.stat().st_size))
    return rows


def _quality(
    original: LoadedModel,
    compressed: LoadedModel,
    task: str | None,
    frame: Any,
    request: CompressionRequest,
    data_ref: str | None,
    tokenizer: Any,
) -> QualityDelta:
    assert task is not None and request.target is not None and data_ref is not None
    before = quality_metric(original, task, frame, request.target, tokenizer)
    after = quality_metric(compressed, task, frame, request.target, tokenizer)
    metric = {"classification": "accuracy", "regression": "rmse", "lm": "loss"}[task]
    higher = metric == "accuracy"
    return QualityDelta(
        metric=metric,
        higher_is_better=higher,
        data=data_ref,
        rows=len(frame),
        before=before,
        after=after,
        drop=quality_drop(before, after, higher),
        perplexity_before=math.exp(before) if task == "lm" else None,
        perplexity_after=math.exp(after) if task == "lm" else None,
    )


def _settings(request: CompressionRequest) -> dict[str, Any]:
    settings: dict[str, Any] = {"method": request.method}
    if request.method == "prune":
        settings["amount"] = request.amount
    if request.method in TORCH_METHODS:
        settings["layers"] = "Linear"
    if request.method != "prune":
        settings["weights"] = "int8"
    return settings


def _report(
    original: ModelVersion,
    request: CompressionRequest,
    settings: dict[str, Any],
    size_ratio: float,
    latency: dict[str, dict[str, float]],
    quality: QualityDelta | None,
    sparsity: float | None,
    verdict: dict[str, Any],
) -> dict[str, Any]:
    """The evaluation stored with the new version: every number measured."""
    metrics: dict[str, float | None] = {
        "size_ratio": size_ratio,
        "one_row_speedup": latency["one_row"]["speedup"],
        "batch_speedup": latency["batch"]["speedup"],
    }
    if quality is not None:
        metrics.update(
            quality_before=quality.before, quality_after=quality.after, quality_drop=quality.drop
        )
    if sparsity is not None:
        metrics["sparsity"] = sparsity
    return {
        "task": "compression",
        "target": request.target,
        "metrics": metrics,
        "original": original.ref,
        "settings": settings,
        "latency_ms": latency,
        "quality": None if quality is None else quality.model_dump(),
        "verdict": verdict,
    }
