"""Evaluation figures drawn with matplotlib (Agg, no display) and kept as SVG text, so that a
report carries its pictures and the web UI and model cards show them with no extra files."""

from __future__ import annotations

import io
from typing import Any

__all__ = ["calibration_svg", "confusion_svg", "predicted_vs_actual_svg"]


def _figure() -> tuple[Any, Any]:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(4.2, 3.6), dpi=100)


def _svg(fig: Any) -> str:
    import matplotlib.pyplot as plt

    buffer = io.StringIO()
    fig.tight_layout()
    fig.savefig(buffer, format="svg", metadata={"Date": None})
    plt.close(fig)
    return buffer.getvalue()


def confusion_svg(confusion: dict[str, Any]) -> str:
    fig, ax = _figure()
    matrix = confusion["matrix"]
    labels = [str(v) for v in confusion["labels"]]
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels)
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("actual")
    peak = max((max(row) for row in matrix), default=0)
    for i, row in enumerate(matrix):
        for j, count in enumerate(row):
            color = "white" if count > peak / 2 else "black"
            ax.text(j, i, str(count), ha="center", va="center", color=color)
    ax.set_title("confusion matrix")
    return _svg(fig)


def calibration_svg(curve: dict[str, Any]) -> str:
    fig, ax = _figure()
    points = [
        (p, f)
        for p, f in zip(curve["mean_predicted"], curve["fraction_positive"], strict=True)
        if p is not None and f is not None
    ]
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfect")
    if points:
        xs, ys = zip(*points, strict=True)
        ax.plot(xs, ys, marker="o", label=f"model (ECE {curve['ece']:.3f})")
    ax.set_xlabel("mean predicted probability")
    ax.set_ylabel("fraction positive")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.legend(loc="upper left")
    ax.set_title("calibration")
    return _svg(fig)


def predicted_vs_actual_svg(truth: Any, predicted: Any) -> str:
    import numpy as np

    fig, ax = _figure()
    truth = np.asarray(truth, dtype=float)
    predicted = np.asarray(predicted, dtype=float)
    ax.scatter(truth, predicted, s=6, alpha=0.5)
    low, high = float(min(truth.min(), predicted.min())), float(max(truth.max(), predicted.max()))
    ax.plot([low, high], [low, high], linestyle="--", color="grey")
    ax.set_xlabel("actual")
    ax.set_ylabel("predicted")
    ax.set_title("predicted vs actual")
    return _svg(fig)
