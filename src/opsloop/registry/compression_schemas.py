"""What ``models compress`` is asked and what it answers, the same from SDK, REST and CLI.

Kept apart from the service (:mod:`opsloop.registry.compression`) so that the SDK, the remote
backend and the CLI can name these shapes without importing the store's services, ONNX or torch.
A request is checked by :func:`check_request` wherever it is carried out (in-process or on the
server), so a bad one gets the same one-line ``InvalidInput`` from every surface.
"""

from __future__ import annotations

import difflib
from typing import Any

from pydantic import BaseModel
from pydantic import ConfigDict
from pydantic import Field

from opsloop.errors import InvalidInput
from opsloop.registry.entities import AliasEvent
from opsloop.registry.entities import ModelVersion

__all__ = [
    "DEFAULT_PRUNE_AMOUNT",
    "METHODS",
    "TORCH_METHODS",
    "CompressionRequest",
    "CompressionResult",
    "QualityDelta",
    "check_request",
]

#: method → what it does, as ``--help`` and the did-you-mean error show it
METHODS = {
    "onnx-int8": "ONNX Runtime dynamic int8 quantization (scikit-learn models are converted first)",
    "dynamic-int8": "torch dynamic int8 quantization of Linear layers (torch / transformers)",
    "prune": "L1 magnitude pruning of Linear weights by --amount, made permanent (torch)",
}
TORCH_METHODS = ("dynamic-int8", "prune")
DEFAULT_PRUNE_AMOUNT = 0.3


class CompressionRequest(BaseModel):
    """Compress a version into a new one; the gate says whether it may replace the original."""

    method: str = Field(description="onnx-int8, dynamic-int8 or prune")
    amount: float | None = Field(None, description="prune: the fraction of weights zeroed")
    data: str | None = Field(None, description="a table data version to measure quality on")
    target: str | None = Field(
        None, description="with data: the label column, or a causal LM's text column"
    )
    max_quality_drop: float = Field(
        0.01, description="the gate: at most this much worse, relative (0.01 = 1%)"
    )
    min_size_ratio: float = Field(
        3.0, description="the gate: the package at least this many times smaller"
    )
    alias: str | None = Field(
        None, description="moved to the new version when the gate passes (recorded either way)"
    )
    description: str | None = None


class QualityDelta(BaseModel):
    """The quality of the original and the compressed version on one data version."""

    model_config = ConfigDict(frozen=True)

    metric: str = Field(description="accuracy, rmse or loss (a causal LM's next-token loss)")
    higher_is_better: bool
    data: str
    rows: int
    before: float
    after: float
    drop: float = Field(description="how much worse, relative to before (0.01 = 1% worse)")
    perplexity_before: float | None = None
    perplexity_after: float | None = None


class CompressionResult(BaseModel):
    """The new version, what was measured on both versions, and the gate's verdict."""

    model_config = ConfigDict(frozen=True)

    version: ModelVersion
    original: str = Field(description="NAME@N of the version compressed")
    method: str
    settings: dict[str, Any] = Field(default_factory=dict)
    original_bytes: int
    compressed_bytes: int
    size_ratio: float = Field(description="original bytes / compressed bytes")
    latency_ms: dict[str, dict[str, float]] = Field(
        description="one_row and batch: original, compressed (median ms) and speedup"
    )
    batch_rows: int
    quality: QualityDelta | None = None
    sparsity: float | None = Field(None, description="prune: the fraction of weights at zero")
    verdict: dict[str, Any] = Field(description="passed, and each rule with its value")
    alias_event: AliasEvent | None = None
    evaluation_id: str | None = None
    notes: list[str] = Field(default_factory=list)

    @property
    def passed(self) -> bool:
        return bool(self.verdict.get("passed"))


def check_request(request: CompressionRequest) -> CompressionRequest:
    """The request with the method's defaults filled in.

    Raises:
        InvalidInput: An unknown method (with the nearest name), ``amount`` outside (0, 1) or
            given to a method that takes none, ``data`` without ``target`` or the reverse, a
            negative quality drop or a size ratio that is not positive.
    """
    if request.method not in METHODS:
        near = difflib.get_close_matches(request.method, list(METHODS), n=1)
        hint = f"did you mean {near[0]!r}? " if near else ""
        raise InvalidInput(
            f"unknown compression method {request.method!r}: {hint}one of {', '.join(METHODS)}"
        )
    amount = request.amount
    if request.method == "prune":
        amount = DEFAULT_PRUNE_AMOUNT if amount is None else amount
        if not 0 < amount < 1:
            raise InvalidInput(f"--amount must be between 0 and 1 (exclusive), got {amount}")
    elif amount is not None:
        raise InvalidInput(f"--amount is for prune; {request.method} takes none")
    if (request.data is None) != (request.target is None):
        raise InvalidInput("pass --data and --target together (the column to measure on)")
    if request.max_quality_drop < 0:
        raise InvalidInput(f"--max-quality-drop must be >= 0, got {request.max_quality_drop}")
    if request.min_size_ratio <= 0:
        raise InvalidInput(f"--min-size-ratio must be > 0, got {request.min_size_ratio}")
    return request.model_copy(update={"amount": amount})
