"""The drift report as one self-contained HTML page: a summary table, then a plot per column of
the reference and current distributions side by side (inline SVG, no scripts, no network), so
it can be mailed or attached to a ticket. Rendered from the report's JSON twin."""

from __future__ import annotations

from typing import Any

from opsloop.data.profiling import format_number

__all__ = ["render"]

_VERDICT = {True: ("drift", "drift"), False: ("no drift", "ok"), None: ("no verdict", "none")}


def render(report: dict[str, Any], *, title: str) -> str:
    from jinja2 import ChoiceLoader
    from jinja2 import Environment
    from jinja2 import PackageLoader
    from jinja2 import select_autoescape

    # The page around the report is the data profile report's (``data/_report.html``).
    loaders = [
        PackageLoader("opsloop.monitoring", "templates"),
        PackageLoader("opsloop.data", "templates"),
    ]
    env = Environment(loader=ChoiceLoader(loaders), autoescape=select_autoescape())
    env.filters["num"] = format_number
    env.globals["verdict"] = lambda v: _VERDICT[v][0]
    env.globals["verdict_class"] = lambda v: _VERDICT[v][1]
    return env.get_template("monitoring/drift_report.html").render(r=report, title=title)
