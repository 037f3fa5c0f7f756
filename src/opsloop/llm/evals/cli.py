"""``opsloop eval ...``: run LLM eval suites (for people and for CI), read runs, gate labels."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated
from typing import Any

import typer

from opsloop.console.commands import command_group
from opsloop.console.output import command_client
from opsloop.console.output import console
from opsloop.console.output import print_json
from opsloop.console.output import print_listing
from opsloop.console.output import print_table
from opsloop.console.output import when

eval_app = command_group(
    "LLM evaluation suites in YAML: prompts x models x test cases x assertions (equals, "
    "contains, regex, json-schema, latency, cost, bleu, rouge, similar, grounded, "
    "llm-rubric). Exit code 1 when the pass rate is under the suite's threshold, so CI "
    "can gate on it. Examples:\n\n"
    "  opsloop eval run evals/support.yaml\n\n"
    "  opsloop eval run evals/support.yaml --threshold 0.95 --concurrency 8 --json\n\n"
    "  opsloop eval show RUN_ID --failures\n\n"
    "  opsloop eval require answer production --suite support-answers --min-pass-rate 0.9"
)
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]


def _summary(run: Any, failures: bool) -> None:
    out = console()
    verdict = "[green]PASSED[/]" if run.passed else "[red]FAILED[/]"
    out.print(
        f"{verdict} suite {run.suite}: {run.passed_count}/{run.total} cases passed "
        f"({run.pass_rate:.1%}, threshold {run.threshold:.0%}) in {run.duration_ms / 1000:.1f} s"
        f"  run {run.run_id}"
    )
    print_table(
        ["prompt | provider", "pass rate"], [(k, f"{v:.1%}") for k, v in run.by_prompt.items()]
    )
    if run.comparison:
        c = run.comparison
        out.print(
            f"vs previous run {c.previous_run_id[:8]} ({c.previous_pass_rate:.1%}): "
            f"{len(c.regressions)} regression(s), {len(c.fixes)} fix(es)"
        )
        for cell in c.regressions:
            out.print(f"  [red]regressed[/] {cell}", highlight=False)
    if failures and run.results:
        failed = [r for r in run.results if not r.passed]
        if failed:
            print_table(
                ["prompt", "provider", "case", "output", "why"],
                [
                    (
                        r.prompt,
                        r.provider,
                        r.description,
                        (r.output or "")[:80],
                        r.error or "; ".join(a["reason"] for a in r.assertions if not a["passed"]),
                    )
                    for r in failed
                ],
                title="failing cases",
            )


def _report(result: Any, *, failures: bool, as_json: bool) -> None:
    """A run as ``run`` and ``show`` print it: JSON for scripts, a summary for people."""
    if as_json:
        print_json(result)
    else:
        _summary(result, failures)


@eval_app.command("run")
def run(
    suite: Annotated[Path, typer.Argument(help="The suite's YAML file.")],
    concurrency: Annotated[int | None, typer.Option(help="Calls in flight at once.")] = None,
    threshold: Annotated[
        float | None, typer.Option(help="Override the suite's required pass rate (0-1).")
    ] = None,
    json_: JsonOption = False,
) -> None:
    """Run a suite, store the run, compare it with the previous one, exit 1 under threshold."""
    from rich.progress import BarColumn
    from rich.progress import MofNCompleteColumn
    from rich.progress import Progress
    from rich.progress import TextColumn
    from rich.progress import TimeElapsedColumn

    from opsloop.llm.evals.runner import expand_cases
    from opsloop.llm.evals.runner import resolve_prompts
    from opsloop.llm.evals.suite import load_suite

    client = command_client()
    loaded = load_suite(suite)
    total = (
        len(resolve_prompts(loaded, client.prompts))
        * len(loaded.providers)
        * len(expand_cases(loaded, client.data))
    )
    progress = Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=console(stderr=True), transient=True, disable=json_,
    )  # fmt: skip
    with progress:
        task = progress.add_task(f"eval {loaded.name}", total=total)
        result = client.evals.run(
            loaded,
            concurrency=concurrency,
            threshold=threshold,
            on_result=lambda _r: progress.advance(task),
        )
    _report(result, failures=True, as_json=json_)
    if not result.passed:
        raise typer.Exit(1)


@eval_app.command("list")
def list_runs(
    suite: Annotated[str | None, typer.Option(help="Only runs of this suite.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many runs.")] = 20,
    json_: JsonOption = False,
) -> None:
    """Eval runs, newest first."""
    runs = command_client().evals.runs(suite, limit)
    print_listing(
        runs,
        ["run", "suite", "when (UTC)", "passed", "pass rate", "threshold", "regressions"],
        [
            (
                r.run_id,
                r.suite,
                when(r.created_at),
                f"{r.passed_count}/{r.total}",
                f"{r.pass_rate:.1%}",
                f"{r.threshold:.0%}",
                len(r.comparison.regressions) if r.comparison else "",
            )
            for r in runs
        ],
        as_json=json_,
    )


@eval_app.command("show")
def show(
    run_id: str,
    failures: Annotated[bool, typer.Option(help="List the failing cases.")] = True,
    json_: JsonOption = False,
) -> None:
    """One run: pass rates per prompt and provider, regressions, failing cases and why."""
    _report(command_client().evals.get(run_id), failures=failures, as_json=json_)


@eval_app.command("require")
def require(
    prompt: str,
    label: str,
    suite: Annotated[str, typer.Option(help="The suite a version must pass to take LABEL.")],
    min_pass_rate: Annotated[float, typer.Option(help="Share of its cases that must pass.")] = 1.0,
    remove: Annotated[bool, typer.Option("--remove", help="Drop the requirement.")] = False,
) -> None:
    """Make PROMPT@LABEL move only to versions that passed SUITE (checked on every move)."""
    evals = command_client().evals
    if remove:
        evals.unrequire(prompt, label)
        console().print(f"{prompt}@{label} no longer requires a suite")
        return
    evals.require(prompt, label, suite=suite, min_pass_rate=min_pass_rate)
    console().print(
        f"{prompt}@{label} now moves only to versions that pass {suite} at {min_pass_rate:.0%}"
    )
