"""``opsloop feedback ...``: annotation queues, reviewing traces, fine-tuning exports."""

from __future__ import annotations

from typing import Annotated
from typing import Any

import typer

from opsloop.console.commands import JsonOption
from opsloop.console.commands import command_group
from opsloop.console.output import command_client
from opsloop.console.output import console
from opsloop.console.output import print_json
from opsloop.console.output import print_listing
from opsloop.console.output import print_view
from opsloop.llm.tracing.cli import Error
from opsloop.llm.tracing.cli import ScoreOpt
from opsloop.llm.tracing.cli import Since
from opsloop.llm.tracing.cli import Tag
from opsloop.llm.tracing.cli import User
from opsloop.llm.tracing.cli import filter_options

feedback_app = command_group(
    "Human feedback on traces: annotation queues for reviewers, and rated traces exported "
    "as fine-tuning data versions. Examples:\n\n"
    "  opsloop feedback queues create support --score helpfulness:numeric:1:5 "
    "--score tone:categorical:friendly,neutral,rude\n\n"
    "  opsloop feedback queues add support --tag support --since 1d\n\n"
    "  opsloop feedback review support          (interactive)\n\n"
    "  opsloop feedback export support-sft --score 'helpfulness>=4'\n\n"
    "  opsloop feedback export support-dpo --format preference --rank-by helpfulness"
)
queues_app = command_group("Annotation queues of traces for reviewers.")
feedback_app.add_typer(queues_app, name="queues")


def parse_score_config(text: str) -> dict[str, Any]:
    """``NAME[:TYPE[:ARGS]]``: ``helpfulness:numeric:1:5``, ``ok:boolean``,
    ``tone:categorical:friendly,neutral,rude``, ``note:text``."""
    from opsloop.errors import InvalidInput

    name, _, rest = text.partition(":")
    kind, _, args = rest.partition(":")
    config: dict[str, Any] = {"name": name, "data_type": kind or "numeric"}
    if config["data_type"] not in ("numeric", "boolean", "categorical", "text"):
        raise InvalidInput(
            f"--score {text!r}: type {kind!r} is not numeric, boolean, categorical or text"
        )
    if config["data_type"] == "categorical":
        config["categories"] = [c for c in args.split(",") if c]
    elif config["data_type"] == "numeric" and args:
        low, _, high = args.partition(":")
        try:
            config["min"], config["max"] = float(low), float(high)
        except ValueError:
            raise InvalidInput(f"--score {text!r}: numeric bounds are MIN:MAX, e.g. 1:5") from None
    return config


def _value(raw: str) -> Any:
    if raw.lower() in ("true", "false"):
        return raw.lower() == "true"
    try:
        return float(raw)
    except ValueError:
        return raw


@queues_app.command("create")
def queue_create(
    name: str,
    score: Annotated[
        list[str], typer.Option(help="NAME[:TYPE[:ARGS]], repeatable; see the examples.")
    ],
    description: Annotated[str | None, typer.Option(help="What reviewers should judge.")] = None,
) -> None:
    """Create an annotation queue with the scores its reviewers give."""
    queue = command_client().feedback.create_queue(
        name, scores=[parse_score_config(s) for s in score], description=description
    )
    console().print(f"created queue {queue.name}: " + ", ".join(
        f"{s.name} ({s.data_type})" for s in queue.scores
    ))  # fmt: skip


@queues_app.command("list")
def queue_list(json_: JsonOption = False) -> None:
    """Queues with pending, done and skipped counts."""
    queues = command_client().feedback.queues()
    print_listing(
        queues,
        ["queue", "scores", "pending", "done", "skipped"],
        [
            (
                q.name,
                ", ".join(s.name for s in q.scores),
                q.counts["pending"],
                q.counts["done"],
                q.counts["skipped"],
            )
            for q in queues
        ],
        as_json=json_,
    )


@queues_app.command("add")
def queue_add(
    name: str,
    trace: Annotated[list[str] | None, typer.Option(help="A trace id, repeatable.")] = None,
    since: Since = None,
    tag: Tag = None,
    user: User = None,
    error: Error = None,
    score: ScoreOpt = None,
) -> None:
    """Queue traces by id and/or by filter (up to 1,000 per call)."""
    flt = filter_options(since=since, tags=tag, user_id=user, error=error, scores=score)
    added = command_client().feedback.add(name, trace or [], filter=flt or None)
    console().print(f"queued {added} new trace(s) in {name}")


@feedback_app.command("next")
def next_item(queue: str, json_: JsonOption = False) -> None:
    """Claim the next trace to review in QUEUE and show it (exit 0 with a note when done)."""
    item = command_client().feedback.next(queue)
    if item is None and not json_:
        console().print(f"queue {queue} has nothing left to review")
    else:
        print_view(item, _show, as_json=json_)


def _show(item: Any) -> None:
    out = console()
    trace = item.trace.trace
    out.print(f"[bold]item {item.id}[/]  trace {trace.trace_id}  {trace.name}")
    out.print(f"input:  {trace.input}", markup=False)
    out.print(f"output: {trace.output}", markup=False)


@feedback_app.command("submit")
def submit(
    queue: str,
    item_id: str,
    score: Annotated[list[str], typer.Option(help="NAME=VALUE, repeatable.")],
    comment: Annotated[str | None, typer.Option(help="Why.")] = None,
) -> None:
    """Score an item you claimed with `opsloop feedback next` and close it."""
    from opsloop.console.output import parse_tags

    scores = {k: _value(v) for k, v in parse_tags(score).items()}
    command_client().feedback.submit(queue, item_id, scores, comment=comment)
    console().print(f"reviewed {item_id}")


def _hint(config: Any) -> str:
    if config.data_type == "categorical":
        return "/".join(config.categories)
    if config.data_type == "boolean":
        return "true/false"
    if config.min is not None and config.max is not None:
        return f"{config.min:g}-{config.max:g}"
    return str(config.data_type)


def _ask(config: Any) -> Any:
    """Prompt until the answer fits the score's type (or is s / q)."""
    from opsloop.errors import InvalidInput
    from opsloop.llm.feedback.services import check_score_value

    while True:
        answer = typer.prompt(f"{config.name} ({_hint(config)}; s skip, q quit)")
        if answer in ("s", "q"):
            return answer
        value = answer if config.data_type in ("categorical", "text") else _value(answer)
        try:
            return check_score_value(config, value)
        except InvalidInput as exc:
            console(stderr=True).print(f"not saved: {exc.message}", markup=False)


@feedback_app.command("review")
def review(queue: str) -> None:
    """Review QUEUE interactively: each trace is shown, you give each score (s skips, q quits)."""
    feedback = command_client().feedback
    configs = feedback.queue(queue).scores
    done = 0
    while (item := feedback.next(queue)) is not None:
        _show(item)
        scores: dict[str, Any] = {}
        for config in configs:
            answer = _ask(config)
            if answer == "q":
                console().print(f"reviewed {done}; stopped")
                return
            if answer == "s":
                feedback.skip(queue, item.id)
                break
            scores[config.name] = answer
        else:
            feedback.submit(queue, item.id, scores)
            done += 1
    console().print(f"reviewed {done}; queue {queue} is done")


@feedback_app.command("export")
def export(
    dataset: Annotated[str, typer.Argument(help="Dataset to write the next version of.")],
    format: Annotated[str, typer.Option(help="sft (chat JSONL) or preference (pairs).")] = "sft",
    score: ScoreOpt = None,
    rank_by: Annotated[
        str | None, typer.Option(help="preference: the numeric/boolean score that ranks outputs.")
    ] = None,
    min_margin: Annotated[float, typer.Option(help="preference: least score gap of a pair.")] = 0.0,
    since: Since = None,
    tag: Tag = None,
    message: Annotated[str | None, typer.Option("--message", "-m")] = None,
    json_: JsonOption = False,
) -> None:
    """Turn rated traces into a fine-tuning data version, linked to its traces in lineage."""
    flt = filter_options(since=since, scores=score, tags=tag)
    result = command_client().feedback.export(
        dataset, format=format, filter=flt, score=rank_by, min_margin=min_margin, message=message
    )
    if json_:
        print_json(result)
        return
    state = "new version" if result.created else "unchanged (same rows as before)"
    console().print(
        f"{result.ref}: {result.rows} {result.format} rows from {result.traces} traces, {state}"
    )
