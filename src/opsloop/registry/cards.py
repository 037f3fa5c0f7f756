"""Model cards: generated from what the registry knows, plus what people wrote.

The registry fills in the facts (flavor, signature, requirements, the training run with its
params, metrics and code commit, the data versions the run consumed, the evaluations with their
metrics, aliases, tags); people write the sections only they know (``intended_use``,
``limitations``, ``ethical_considerations``, ...) with ``opsloop models card-set``. The card is
JSON for tools and Markdown for people.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy.orm import Session

from opsloop.kernel.timeutil import ms_to_iso
from opsloop.lineage import graph

__all__ = ["build_card", "card_markdown"]

_RUN_FACTS = ("opsloop.git.commit", "opsloop.git.dirty", "opsloop.source.command", "opsloop.seed")


def _training(session: Session, run_id: str | None) -> dict[str, Any] | None:
    if run_id is None:
        return None
    from opsloop.errors import NotFound
    from opsloop.tracking.runs import get_run

    try:
        run = get_run(session, run_id)
    except NotFound:
        return {"run_id": run_id, "missing": True}
    data = []
    for edge in graph.edges_touching(session, (graph.RUN, run_id)):
        if edge.source_type == graph.DATASET_VERSION and edge.relation == "input":
            from opsloop.data.tables import DatasetRow
            from opsloop.data.tables import DatasetVersionRow

            row = session.get(DatasetVersionRow, edge.source_id)
            dataset = session.get(DatasetRow, row.dataset_id) if row else None
            if row is not None and dataset is not None:
                data.append(f"{dataset.name}@{row.number}")
    return {
        "run_id": run_id,
        "run_name": run.info.run_name,
        "status": run.info.status,
        "params": run.data.params,
        "metrics": run.data.metrics,
        "environment": {k: v for k, v in run.data.tags.items() if k in _RUN_FACTS},
        "data": data,
    }


def build_card(session: Session, ref: str) -> dict[str, Any]:
    """The card of a model version as JSON-able data."""
    from opsloop.registry.evaluations import list_evaluations
    from opsloop.registry.models import get_model
    from opsloop.registry.versions import get_version

    version = get_version(session, ref)
    model = get_model(session, version.name)
    return {
        "model": version.name,
        "version": version.number,
        "ref": version.ref,
        "model_description": model.description,
        "description": version.description,
        "sections": version.card,
        "flavor": version.flavor,
        "task": version.task,
        "classes": version.classes,
        "signature": version.signature.model_dump(mode="json", exclude_none=True),
        "requirements": version.requirements,
        "package_id": version.package_id,
        "source": version.source,
        "aliases": version.aliases,
        "tags": version.tags,
        "created_at": ms_to_iso(version.created_at),
        "created_by": version.created_by,
        "training": _training(session, version.run_id),
        "evaluations": [
            {
                "evaluation_id": e.evaluation_id,
                "data": e.dataset_ref,
                "metrics": {k: v for k, v in e.metrics.items() if v is not None},
                "created_at": ms_to_iso(e.created_at),
            }
            for e in list_evaluations(session, version.ref, limit=10)
        ],
    }


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def card_markdown(card: dict[str, Any]) -> str:
    """The card as Markdown for people (a README next to the model)."""
    lines = [f"# Model card: {card['ref']}", ""]
    if card.get("model_description"):
        lines += [card["model_description"], ""]
    if card.get("description"):
        lines += [card["description"], ""]
    lines += [
        "## Facts",
        "",
        f"- Flavor: {card['flavor']}; task: {card.get('task') or 'not stated'}",
        f"- Registered {card['created_at']} by {card['created_by']}; source: {card.get('source')}",
        f"- Package: `{card['package_id']}`",
        f"- Aliases: {', '.join(card['aliases']) or 'none'}",
    ]
    if card.get("classes"):
        lines.append(f"- Classes: {', '.join(map(str, card['classes']))}")
    for title, key in (
        ("Intended use", "intended_use"),
        ("Limitations", "limitations"),
        ("Ethical considerations", "ethical_considerations"),
    ):
        text = card["sections"].get(key)
        lines += ["", f"## {title}", "", text or "_Not written yet: `opsloop models card-set`._"]
    for key, text in card["sections"].items():
        if key not in ("intended_use", "limitations", "ethical_considerations"):
            lines += ["", f"## {key.replace('_', ' ').capitalize()}", "", text]
    signature = card["signature"]["inputs"]
    lines += ["", "## Inputs", ""]
    if signature.get("columns"):
        lines += ["| column | type |", "|---|---|"]
        lines += [f"| {c['name']} | {c['type']} |" for c in signature["columns"]]
    else:
        lines.append(f"Tensor {json.dumps(signature.get('tensor'))}")
    training = card.get("training")
    lines += ["", "## Training", ""]
    if not training:
        lines.append("Registered from a file; no training run is recorded.")
    else:
        lines.append(
            f"Run `{training['run_id']}` ({training.get('run_name')}, {training.get('status')})."
        )
        if training.get("data"):
            lines.append(f"Data: {', '.join(training['data'])}.")
        env = training.get("environment", {})
        if env.get("opsloop.git.commit"):
            lines.append(f"Code: git `{env['opsloop.git.commit']}`.")
        if training.get("params"):
            lines += ["", "| param | value |", "|---|---|"]
            lines += [f"| {k} | {v} |" for k, v in sorted(training["params"].items())]
        if training.get("metrics"):
            lines += ["", "| metric | value |", "|---|---|"]
            lines += [f"| {k} | {_fmt(v)} |" for k, v in sorted(training["metrics"].items())]
    lines += ["", "## Evaluations", ""]
    if not card["evaluations"]:
        lines.append("None recorded yet: `opsloop models evaluate`.")
    for evaluation in card["evaluations"]:
        shown = ", ".join(f"{k} {_fmt(v)}" for k, v in sorted(evaluation["metrics"].items()))
        lines.append(f"- {evaluation['created_at']} on {evaluation['data']}: {shown}")
    lines += ["", "## Requirements", "", *[f"- `{r}`" for r in card["requirements"]], ""]
    return "\n".join(lines)
