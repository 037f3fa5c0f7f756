"""``opsloop ci ...``: a pull request's report (gate verdict, metric changes, data diffs, eval
suites), posted as one comment that every push updates, and the CI workflow that runs it."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated
from typing import Any

import typer

from opsloop.console.commands import command_group
from opsloop.console.output import command_client
from opsloop.console.output import print_json

ci_app = command_group(
    "CI for models: a pull request's report (the evaluation gate's verdict with every number, "
    "metrics of this branch's runs vs the base branch's, data versions that changed, eval "
    "suites and their regressions), posted as one comment updated on every push, and the "
    "workflow that runs it. Examples:\n\n"
    "  opsloop ci init github\n\n"
    "  opsloop ci report --base main --model churn --post github\n\n"
    "  opsloop ci report --base main --head my-branch --out report.md --json"
)


@ci_app.command("report")
def report(
    base: Annotated[str, typer.Option(help="The branch the pull request merges into.")] = "main",
    head: Annotated[
        str | None,
        typer.Option(help="This branch (default: the runner's variables, else git's branch)."),
    ] = None,
    commit: Annotated[
        str | None,
        typer.Option(help="Also count runs of this commit as the head's (default: the job's)."),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(help="Judge the gate for the version of MODEL the head's runs registered."),
    ] = None,
    candidate: Annotated[
        str | None, typer.Option(help="Judge the gate for this version (NAME@N) instead.")
    ] = None,
    against: Annotated[str, typer.Option(help="The alias the candidate is judged against.")] = (
        "champion"
    ),
    policy: Annotated[
        Path | None, typer.Option(help="Gate policy (YAML/JSON); default: the model's stored one.")
    ] = None,
    suite: Annotated[
        list[str] | None,
        typer.Option(help="Eval suite to show, repeatable (default: every suite's latest run)."),
    ] = None,
    out: Annotated[Path, typer.Option(help="Where to write the Markdown (chart beside it).")] = (
        Path("opsloop-ci/report.md")
    ),
    post: Annotated[
        str | None, typer.Option(help="Post or update the comment on github or gitlab.")
    ] = None,
    json_: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Build the pull request's report, write it (and the job summary), optionally post it,
    and exit with the gate's verdict: 0 passed (or no gate asked for), 1 rejected, 2 and
    above an error (2 bad input, 3 not found, ...).

    A host that refuses the comment (a token without permission) prints a warning: the report
    is still in --out and the job summary, and the exit code is still the gate's.
    """
    from opsloop.ci.branches import head_side
    from opsloop.ci.build import GateRequest
    from opsloop.ci.build import build_report
    from opsloop.ci.build import write_report
    from opsloop.ci.report import exit_code
    from opsloop.ci.report import render_markdown
    from opsloop.ci.sources import Side
    from opsloop.errors import InvalidInput

    if post not in (None, "github", "gitlab"):
        raise InvalidInput(f"--post takes github or gitlab, got {post!r}")
    host = _host(post) if post else None  # bad CI variables fail before any work
    side = head_side(os.environ, head, commit)
    gate = GateRequest(model, candidate, against, str(policy) if policy else None)
    built = build_report(command_client(), Side(base), side, gate, suite)
    written = write_report(built, out)
    posted: Any = None
    if host is not None:
        posted = _post(host, render_markdown(built), written.path)
    code = exit_code(built)
    if json_:
        print_json(
            {
                "exit_code": code,
                "gate": built.gate,
                "pairs": built.pairs,
                "data": built.data,
                "evals": built.evals,
                "report": str(written.path),
                "chart": str(written.chart) if written.chart else None,
                "posted": posted,
            }
        )
    else:
        verdict = {None: "no gate ran", True: "gate passed", False: "gate FAILED"}[
            None if built.gate is None else bool(built.gate["passed"])
        ]
        where = f"; comment {posted.action}" if posted else ""
        typer.echo(f"{verdict}: report written to {written.path}{where}")
    raise typer.Exit(code)


def _host(post: str) -> Any:
    from opsloop.ci.hosts import github_from_env
    from opsloop.ci.hosts import gitlab_from_env

    return github_from_env(os.environ) if post == "github" else gitlab_from_env(os.environ)


def _post(host: Any, body: str, path: Path) -> Any:
    from opsloop.ci.hosts import CommentRefused

    try:
        return host.upsert(body)
    except CommentRefused as refused:
        sys.stderr.write(
            f"warning: the comment was not posted ({refused}); the report is in {path}"
            " and the job summary\n"
        )
        return None
    finally:
        host.close()


@ci_app.command("init")
def init(
    host: Annotated[str, typer.Argument(help="github (.github/workflows/opsloop.yml) or gitlab.")],
    base: Annotated[str, typer.Option(help="The branch pull requests merge into.")] = "main",
    data: Annotated[str, typer.Option(help="The training data to version.")] = "data/train.csv",
    dataset: Annotated[str, typer.Option(help="Its dataset name.")] = "train",
    expect: Annotated[str, typer.Option(help="Expectations it must meet.")] = (
        "data/expectations.yaml"
    ),
    pipeline: Annotated[str, typer.Option(help="FILE.py:NAME of the pipeline.")] = (
        "pipeline.py:training"
    ),
    suite: Annotated[
        str | None, typer.Option(help="The eval suite's YAML (none: no eval step).")
    ] = "evals/suite.yaml",
    model: Annotated[str | None, typer.Option(help="The model whose gate decides.")] = None,
    policy: Annotated[
        str | None, typer.Option(help="Gate policy file (default: the model's stored one).")
    ] = None,
    force: Annotated[bool, typer.Option(help="Overwrite an existing workflow.")] = False,
) -> None:
    """Write a CI workflow that validates the data, runs the pipeline (its cache in the shared
    store), runs the eval suite, judges the gate and posts the report on pull requests.
    An existing file is kept unless --force."""
    from opsloop.ci.workflow import WorkflowSpec
    from opsloop.ci.workflow import write_workflow

    spec = WorkflowSpec(
        base=base,
        data=data,
        dataset=dataset,
        expect=expect,
        pipeline=pipeline,
        suite=None if suite in (None, "none") else suite,
        model=model,
        policy=policy,
    )
    path = write_workflow(Path.cwd(), host, spec, force=force)
    typer.echo(f"wrote {path.relative_to(Path.cwd())}")
