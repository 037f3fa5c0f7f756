"""Profiles of tables (EDA): per-column distributions, missing values and correlations.

Computed with DuckDB aggregations that stream over the files, so a profile of a table larger
than memory needs no more memory than its histograms. The JSON summary is the source of
truth; the HTML report is rendered from it, self-contained (inline SVG, no scripts, no
network), so it can be mailed or attached to a ticket.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from opsloop.data.tabular import TABLE_VIEW
from opsloop.data.tabular import open_table

__all__ = ["format_number", "profile_table", "write_report"]

BINS = 20
TOP_VALUES = 10
MAX_CORRELATED = 30
_NUMERIC = (
    "TINYINT",
    "SMALLINT",
    "INTEGER",
    "BIGINT",
    "HUGEINT",
    "FLOAT",
    "DOUBLE",
    "DECIMAL",
    "UTINYINT",
    "USMALLINT",
    "UINTEGER",
    "UBIGINT",
    "REAL",
)
_TEMPORAL = ("DATE", "TIMESTAMP")


def _kind(duck_type: str) -> str:
    if duck_type.startswith(_NUMERIC):
        return "numeric"
    if duck_type.startswith(_TEMPORAL):
        return "temporal"
    if duck_type == "BOOLEAN":
        return "boolean"
    if duck_type == "VARCHAR":
        return "categorical"
    return "other"


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def profile_table(files: list[str], fmt: str) -> dict[str, Any]:
    """The profile of a table as a JSON-ready dict (see the module docstring)."""
    with open_table(files, fmt) as con:
        described = con.execute(f"DESCRIBE {TABLE_VIEW}").fetchall()
        rows = con.execute(f"SELECT count(*) FROM {TABLE_VIEW}").fetchone()[0]
        columns = [_column(con, name, str(t), rows) for name, t, *_ in described]
        numeric = [c["name"] for c in columns if c["kind"] == "numeric"][:MAX_CORRELATED]
        correlations = _correlations(con, numeric)
    return {
        "rows": rows,
        "column_count": len(columns),
        "missing_cells": sum(c["missing"] for c in columns),
        "columns": columns,
        "correlations": correlations,
    }


def _column(con: Any, name: str, duck_type: str, rows: int) -> dict[str, Any]:
    c = _q(name)
    kind = _kind(duck_type)
    missing, distinct = con.execute(
        f"SELECT count(*) - count({c}), approx_count_distinct({c}) FROM {TABLE_VIEW}"
    ).fetchone()
    info: dict[str, Any] = {
        "name": name,
        "type": duck_type,
        "kind": kind,
        "missing": missing,
        "missing_pct": 100.0 * missing / rows if rows else 0.0,
        "distinct": distinct,
    }
    if kind in ("numeric", "temporal"):
        value = f"CAST({c} AS DOUBLE)" if kind == "numeric" else f"epoch({c})"
        info.update(_numeric(con, value, kind))
    if kind in ("categorical", "boolean", "other") or (kind == "numeric" and distinct <= 10):
        top = con.execute(
            f"SELECT CAST({c} AS VARCHAR) AS v, count(*) AS n FROM {TABLE_VIEW} "
            f"WHERE {c} IS NOT NULL GROUP BY v ORDER BY n DESC, v LIMIT {TOP_VALUES}"
        ).fetchall()
        info["top"] = [{"value": v, "count": n} for v, n in top]
    return info


def _numeric(con: Any, value: str, kind: str) -> dict[str, Any]:
    low, high, mean, std, q25, q50, q75 = con.execute(
        f"SELECT min({value}), max({value}), avg({value}), stddev_samp({value}), "
        f"quantile_cont({value}, 0.25), quantile_cont({value}, 0.5), "
        f"quantile_cont({value}, 0.75) FROM {TABLE_VIEW}"
    ).fetchone()
    stats = {
        "min": low,
        "max": high,
        "mean": mean,
        "std": std,
        "q25": q25,
        "median": q50,
        "q75": q75,
    }
    if low is None or not math.isfinite(low) or not math.isfinite(high):
        return {"stats": stats}
    width = (high - low) / BINS or 1.0
    counts = [0] * BINS
    for bucket, n in con.execute(
        f"SELECT least(CAST(floor(({value} - ?) / ?) AS INTEGER), {BINS - 1}) AS bucket, count(*) "
        f"FROM {TABLE_VIEW} WHERE {value} IS NOT NULL GROUP BY 1",
        [low, width],
    ).fetchall():
        counts[max(0, min(BINS - 1, bucket))] += n
    edges = [low + i * width for i in range(BINS + 1)]
    return {
        "stats": stats,
        "histogram": {"edges": edges, "counts": counts, "temporal": kind == "temporal"},
    }


def _correlations(con: Any, names: list[str]) -> dict[str, Any]:
    if len(names) < 2:
        return {"columns": names, "matrix": [[1.0] * len(names)] if names else []}
    pairs = [(a, b) for i, a in enumerate(names) for b in names[i + 1 :]]
    select = ", ".join(f"corr(CAST({_q(a)} AS DOUBLE), CAST({_q(b)} AS DOUBLE))" for a, b in pairs)
    values = con.execute(f"SELECT {select} FROM {TABLE_VIEW}").fetchone()
    matrix = [[1.0 if a == b else None for b in names] for a in names]
    index = {n: i for i, n in enumerate(names)}
    for (a, b), r in zip(pairs, values, strict=True):
        r = None if r is None or not math.isfinite(r) else r
        matrix[index[a]][index[b]] = matrix[index[b]][index[a]] = r
    return {"columns": names, "matrix": matrix}


def write_report(summary: dict[str, Any], out_dir: Path, stem: str) -> tuple[Path, Path]:
    """Write ``<stem>.profile.json`` and the HTML report rendered from it."""
    from jinja2 import Environment
    from jinja2 import PackageLoader
    from jinja2 import select_autoescape

    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / f"{stem}.profile.json"
    html_path = out_dir / f"{stem}.profile.html"
    json_path.write_text(json.dumps(summary, indent=2, default=str))
    env = Environment(
        loader=PackageLoader("opsloop.data", "templates"), autoescape=select_autoescape()
    )
    env.filters["num"] = format_number
    env.globals["color"] = _corr_color
    html = env.get_template("data/profile_report.html").render(p=summary, stem=stem)
    html_path.write_text(html)
    return html_path, json_path


def format_number(value: Any) -> str:
    """A number as a report shows it: grouped thousands, 4 significant digits, `-` for none."""
    if value is None:
        return "-"
    if isinstance(value, float):
        if value != 0 and (abs(value) >= 1e6 or abs(value) < 1e-3):
            return f"{value:.3e}"
        return f"{value:,.4g}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _corr_color(r: float | None) -> str:
    """Blue for positive, red for negative correlation, white at zero, grey for unknown."""
    if r is None:
        return "#ddd"
    strength = int(255 * (1 - min(1.0, abs(r))))
    return f"rgb({strength},{strength},255)" if r >= 0 else f"rgb(255,{strength},{strength})"
