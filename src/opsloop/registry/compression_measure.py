"""What a compression is judged on: one-row and batch latency, quality on a data version, and
the gate over them.

Both versions are measured the same way, in the same process, one after the other: through
``LoadedModel.predict`` (signature checks included, as a server answers), on the same rows.
Quality is accuracy for a classifier, RMSE for a regressor and the mean next-token loss for a
causal LM (its perplexity beside it). A quality drop is relative to the original, whichever
way the metric points, so "at most 1% worse" reads the same for accuracy and for a loss.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from opsloop.errors import InvalidInput
from opsloop.registry.package import LoadedModel

__all__ = [
    "BATCH_ROWS",
    "LM_BATCH_ROWS",
    "judge",
    "latency_ms",
    "quality_drop",
    "quality_metric",
    "sample_rows",
]

BATCH_ROWS = 256  # a table's batch
LM_BATCH_ROWS = 16  # a causal LM's batch: sequences of up to _TOKENS tokens
_TOKENS = 32  # a causal LM's rows: at most this many tokens each
_BUDGET_S = 0.3  # per model and shape: enough repeats for a stable median on a busy machine


def _paired_medians_ms(first: Callable[[], Any], second: Callable[[], Any]) -> tuple[float, float]:
    """Median milliseconds of each call, timed in turns (first, second, first...) so that a
    busy machine slows both alike rather than whichever ran while it was busy."""
    first(), second()  # warm: lazy initialisation, allocator, caches
    times: tuple[list[float], list[float]] = ([], [])
    deadline = time.perf_counter() + 2 * _BUDGET_S
    while len(times[0]) < 5 or (time.perf_counter() < deadline and len(times[0]) < 200):
        for call, spent in ((first, times[0]), (second, times[1])):
            start = time.perf_counter()
            call()
            spent.append(time.perf_counter() - start)
    for spent in times:
        spent.sort()
    return times[0][len(times[0]) // 2] * 1000, times[1][len(times[1]) // 2] * 1000


def latency_ms(
    original: LoadedModel, compressed: LoadedModel, one_row: Any, batch: Any
) -> dict[str, dict[str, float]]:
    """Median milliseconds of one ``predict`` on one row and on a batch, for both models,
    with the speedup (original / compressed)."""
    shown: dict[str, dict[str, float]] = {}
    for label, rows in (("one_row", one_row), ("batch", batch)):
        before, after = _paired_medians_ms(
            lambda rows=rows: original.predict(rows), lambda rows=rows: compressed.predict(rows)
        )
        shown[label] = {
            "original": round(before, 4),
            "compressed": round(after, 4),
            "speedup": round(before / max(after, 1e-9), 3),
        }
    return shown


def sample_rows(model: LoadedModel, features: Any, tokenizer: Any, texts: Any) -> Any:
    """The rows latency is measured on: the data version's (repeated up to a batch), else rows
    drawn from the signature (numbers only; a seeded generator, so both models see the same)."""
    import numpy as np
    import pandas as pd

    tensor = model.signature.inputs.tensor
    length = _TOKENS if tensor is None or tensor.shape[1:2] in ([], [-1]) else tensor.shape[1]
    if texts is not None:
        return token_batch(tokenizer, list(texts)[:LM_BATCH_ROWS], length)
    if features is not None:
        repeats = -(-BATCH_ROWS // max(len(features), 1))
        return pd.concat([features] * repeats, ignore_index=True).head(BATCH_ROWS)
    rng = np.random.default_rng(0)
    inputs = model.signature.inputs
    if inputs.columns is not None:
        frame = {}
        for column in inputs.columns:
            if column.type == "float":
                frame[column.name] = rng.normal(size=BATCH_ROWS)
            elif column.type == "integer":
                frame[column.name] = rng.integers(0, 10, size=BATCH_ROWS)
            else:
                raise InvalidInput(
                    f"column {column.name!r} is {column.type}: pass --data to measure on real rows"
                )
        return pd.DataFrame(frame)
    assert tensor is not None  # a signature is columns or a tensor
    dtype = np.dtype(tensor.dtype)
    if dtype.kind in "iu":  # token ids: a causal LM's (or an embedding's) vocabulary
        shape = [LM_BATCH_ROWS, *(length if d == -1 else d for d in tensor.shape[1:])]
        return rng.integers(0, _vocabulary(model), size=shape).astype(dtype)
    shape = [BATCH_ROWS, *(_TOKENS if d == -1 else d for d in tensor.shape[1:])]
    return rng.normal(size=shape).astype(dtype)


def _vocabulary(model: LoadedModel) -> int:
    config = getattr(model.raw, "config", None)
    return int(getattr(config, "vocab_size", 0) or 2)


def token_batch(tokenizer: Any, texts: list[str], length: int) -> Any:
    """Texts as one int64 batch of token ids, each cut or repeated to ``length``."""
    import numpy as np

    rows = []
    for text in texts:
        ids = list(tokenizer(str(text), add_special_tokens=False)["input_ids"]) or [0]
        while len(ids) < length:
            ids = ids + ids
        rows.append(ids[:length])
    return np.asarray(rows, dtype=np.int64)


def quality_metric(model: LoadedModel, task: str, frame: Any, target: str, tokenizer: Any) -> float:
    """Accuracy (classification), RMSE (regression) or the mean next-token loss (``lm``)."""
    import numpy as np

    if task == "lm":
        return _next_token_loss(model.raw, tokenizer, list(frame[target]))
    features, truth = frame.drop(columns=[target]), frame[target].to_numpy()
    predicted = np.asarray(model.predict(features))
    if task == "classification":
        if predicted.ndim == 2 and predicted.dtype.kind == "f":  # a torch classifier's logits
            predicted = predicted.argmax(axis=1)
            if model.classes is not None:
                predicted = np.asarray(model.classes)[predicted]
        return float(np.mean(predicted.reshape(-1) == truth))
    errors = predicted.reshape(-1).astype(float) - truth.astype(float)
    return float(np.sqrt(np.mean(errors**2)))


def _next_token_loss(raw: Any, tokenizer: Any, texts: list[str]) -> float:
    """The mean cross-entropy of each next token, over every text's tokens (texts with fewer
    than two tokens are skipped: nothing to predict)."""
    import torch

    total, count = 0.0, 0
    with torch.no_grad():
        for text in texts:
            ids = list(tokenizer(str(text), add_special_tokens=False)["input_ids"])
            if len(ids) < 2:
                continue
            tokens = torch.tensor([ids])
            out = raw(tokens)
            logits = getattr(out, "logits", out)[0, :-1]
            loss = torch.nn.functional.cross_entropy(logits, tokens[0, 1:], reduction="sum")
            total, count = total + float(loss), count + len(ids) - 1
    if count == 0:
        raise InvalidInput("the text column holds no text of two tokens or more")
    return total / count


def quality_drop(before: float, after: float, higher_is_better: bool) -> float:
    """How much worse ``after`` is than ``before``, relative (negative: better)."""
    worse = before - after if higher_is_better else after - before
    return worse / abs(before) if before else worse


def judge(
    size_ratio: float,
    drop: float | None,
    *,
    min_size_ratio: float,
    max_quality_drop: float,
) -> dict[str, Any]:
    """The gate: at least ``min_size_ratio`` times smaller and at most ``max_quality_drop``
    worse. Quality not measured (no data version) fails its rule: the gate cannot say."""
    rules = [
        {
            "rule": f"size_ratio >= {min_size_ratio:g}",
            "value": round(size_ratio, 4),
            "passed": size_ratio >= min_size_ratio,
        },
        {
            "rule": f"quality_drop <= {max_quality_drop:g}",
            "value": None if drop is None else round(drop, 6),
            "passed": drop is not None and drop <= max_quality_drop,
            **({"detail": "not measured: pass --data and --target"} if drop is None else {}),
        },
    ]
    return {"passed": all(r["passed"] for r in rules), "rules": rules}
