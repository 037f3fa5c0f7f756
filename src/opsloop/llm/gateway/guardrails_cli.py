"""``opsloop guardrails test``: a route's guardrails on a file of inputs, before they go live.

It reads the route's ``guardrails:`` list with the gateway's own config loader, so the file it
passes is one the gateway starts with; only the upstreams' key variables need not be set, since
no upstream is called.
"""

from __future__ import annotations

import difflib
import json
from pathlib import Path
from typing import Annotated
from typing import Any
from typing import Literal

import typer

from opsloop.console.commands import JsonOption
from opsloop.console.commands import command_group
from opsloop.console.output import console
from opsloop.console.output import print_json
from opsloop.console.output import print_table

__all__ = ["guardrails_app", "load_route_rules", "read_inputs"]

guardrails_app = command_group(
    "Try a gateway route's guardrails (PII, prompt injection, topics, banned words, JSON "
    "schema, PII leaks, groundedness, length) on a file of inputs, and see each rule's "
    "decision. Examples:\n\n"
    "  opsloop guardrails test prompts.jsonl --config gateway.yaml --route support\n\n"
    "  opsloop guardrails test answers.txt --route support --stage output --json"
)


def load_route_rules(config: Path, route: str) -> list[dict[str, Any]]:
    """The raw ``guardrails:`` list of ``route`` in the gateway YAML ``config``, read and
    checked as the gateway reads it (:func:`~opsloop.llm.gateway.config.load_config`), except
    that the upstreams' key variables need not be set: no upstream is called.

    Raises:
        NotFound: no such file, or no such route (the closest route name is suggested).
        InvalidInput: the file is not YAML, or not a valid gateway config.
    """
    from opsloop.errors import NotFound
    from opsloop.llm.gateway.config import load_config

    if not config.is_file():
        raise NotFound(f"no gateway config at {str(config)!r}: pass --config FILE")
    checked = load_config(config, check_keys=False)
    found = checked.route(route)
    if found is None:
        names = sorted(r.name for r in checked.routes)
        near = difflib.get_close_matches(route, names, n=1)
        hint = f"did you mean {near[0]!r}? " if near else ""
        raise NotFound(f"no route {route!r} in {config}; {hint}routes: {', '.join(names)}")
    return list(found.guardrails)


def read_inputs(file: Path, stage: str) -> list[tuple[int, dict[str, Any], str | None]]:
    """``(line number, request body, answer)`` for each non-empty line of ``file``.

    A line is a JSON object with ``messages`` (a chat request) or ``text``, or plain text. At
    the input stage, ``text`` is the user's message; at the output stage it is the answer, and
    the rest of the object (``messages``, ``context``, ``response_format``) is its request.

    Raises:
        NotFound: no such file.
        InvalidInput: a JSON object with neither field, or no input at all.
    """
    from opsloop.errors import InvalidInput
    from opsloop.errors import NotFound

    if not file.is_file():
        raise NotFound(f"no input file at {str(file)!r}")
    out = []
    for number, line in enumerate(file.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        item: Any = line
        if line.lstrip().startswith("{"):
            try:
                item = json.loads(line)
            except ValueError:
                item = line
        if isinstance(item, str):
            item = {"text": item}
        if not isinstance(item.get("messages"), list) and not isinstance(item.get("text"), str):
            raise InvalidInput(
                f"{file}:{number}: give {{'messages': [...]}} or {{'text': ...}}, or plain text"
            )
        text = item.pop("text", None)
        if stage == "input" and text is not None:
            item.setdefault("messages", []).append({"role": "user", "content": text})
            text = None
        elif stage == "output" and text is None:
            raise InvalidInput(f"{file}:{number}: the output stage checks answers: give 'text'")
        out.append((number, item, text))
    if not out:
        raise InvalidInput(f"{file} holds no inputs: one per line, JSON or plain text")
    return out


async def _run(guard: Any, inputs: list[Any], stage: str) -> list[dict[str, Any]]:
    results = []
    for number, body, text in inputs:
        if stage == "input":
            verdict = await guard.check_input(body)
            changed = verdict.body if verdict.body is not body else None
        else:
            verdict = await guard.check_output(body, text)
            changed = verdict.text if verdict.text != text else None
        results.append(
            {"line": number, "blocked": verdict.blocked.rule if verdict.blocked else None,
             "redacted": changed, "reask": verdict.reask, "decisions": verdict.decisions}
        )  # fmt: skip
    return results


@guardrails_app.command("test")
def test(
    file: Annotated[
        Path,
        typer.Argument(
            help="Inputs, one per line: JSONL of {'messages': [...]} or {'text': ...}, or plain "
            "text (a user message at the input stage, an answer at the output stage)."
        ),
    ],
    config: Annotated[
        Path, typer.Option("--config", "-c", help="The gateway's YAML (routes[].guardrails).")
    ] = Path("gateway.yaml"),
    route: Annotated[str, typer.Option("--route", "-r", help="The route whose rules run.")] = "",
    stage: Annotated[
        Literal["input", "output"],
        typer.Option(help="input: rules on requests; output: rules on answers."),
    ] = "input",
    json_: JsonOption = False,
) -> None:
    """Run a route's guardrails on each line of FILE and print every rule's decision.

    FILE holds one input a line: {"messages": [...]} (a chat request), {"text": "..."}, or
    plain text. At the input stage a text is the user's message; at the output stage it is
    the model's answer, and the line's other fields (messages, context, response_format) are
    its request. Rules run in the route's order; a block stops the rest, as in the gateway.
    Exit 0 whatever the decisions; 2 or 3 for a bad file, config or route.
    """
    import asyncio

    from opsloop.errors import InvalidInput
    from opsloop.llm.gateway.guardrails import build_guard

    if not route:
        raise InvalidInput("name the route: --route NAME")
    guard = build_guard(route, load_route_rules(config, route))
    inputs = read_inputs(file, stage)
    rules = [] if guard is None else (guard.input_rules if stage == "input" else guard.output_rules)
    if guard is None or not rules:
        raise InvalidInput(f"route {route!r} has no {stage} guardrails in {config}")
    results = asyncio.run(_run(guard, inputs, stage))
    if json_:
        print_json(results)
        return
    rows = [
        (r["line"], d.rule, d.action, "yes" if d.triggered else "no", d.score, d.reason)
        for r in results
        for d in r["decisions"]
    ]
    print_table(["line", "rule", "action", "triggered", "score", "reason"], rows,
                title=f"route {route}, {stage} stage")  # fmt: skip
    blocked = sum(1 for r in results if r["blocked"])
    changed = sum(1 for r in results if r["redacted"] is not None)
    console().print(
        f"{len(results)} input(s): {blocked} blocked, {changed} redacted, "
        f"{sum(1 for r in results if r['reask'])} re-asked"
    )
