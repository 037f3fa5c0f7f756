"""The report's chart: one horizontal bar per metric, its change from base to head in percent,
green when better by the metric's direction, red when worse (matplotlib, Agg, SVG text)."""

from __future__ import annotations

import io

from opsloop.ci.report import RunPair

__all__ = ["changes_svg"]

_MAX_BARS = 30


def changes_svg(pairs: list[RunPair]) -> str | None:
    """The chart as SVG text, or None when no metric was logged on both sides."""
    bars = [
        (f"{pair.key}: {delta.metric}", delta.percent, delta.better)
        for pair in pairs
        for delta in pair.metrics
        if delta.percent is not None
    ][:_MAX_BARS]
    if not bars:
        return None
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.0, 0.9 + 0.35 * len(bars)), dpi=100)
    colors = {True: "#2da44e", False: "#cf222e", None: "#8c959f"}
    labels = [label for label, _, _ in bars][::-1]
    values = [value for _, value, _ in bars][::-1]
    ax.barh(labels, values, color=[colors[better] for _, _, better in bars][::-1])
    ax.axvline(0, color="#57606a", linewidth=0.8)
    ax.set_xlabel("change from base to head (%)")
    ax.tick_params(axis="y", labelsize=8)
    buffer = io.StringIO()
    fig.tight_layout()
    fig.savefig(buffer, format="svg", metadata={"Date": None})
    plt.close(fig)
    return buffer.getvalue()
