"""A pull request's CI job when nothing changed: the generated GitHub workflow's steps, run here.

    .venv/bin/python bench/ci_noop.py

The project of ``tests/ci/project.py`` (breast-cancer data with expectations, a pipeline that
trains and registers a model, an eval suite, a gate policy) in a git repository, with the
embedded store. The steps of ``opsloop ci init github`` (less checkout, setup-python and
``pip install``) run first as the push to ``main`` would (every pipeline step computed), then as
a pull request from an unchanged branch would: data re-added (no new version), the pipeline all
cache hits, the eval suite, the gate judged and the report posted to a loopback GitHub API.

Issue 29 asks for the no-op job in at most 30 s. The peer is the same pull-request job with the
pipeline's cache off (``--no-cache``); the ratio is what the cache saves (little for this tiny
pipeline: its steps take a second; a real training step is where the cache pays). Each step is
a fresh ``opsloop`` process, so most of a no-op step is Python importing opsloop, pandas and
scikit-learn.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.ci.fake_hosts import GOOD_TOKEN
from tests.ci.fake_hosts import serve
from tests.ci.project import run_steps
from tests.ci.project import runner_env
from tests.ci.project import workflow_steps
from tests.ci.project import write_project
from tests.gitrepos import git

from opsloop.ci.workflow import WorkflowSpec
from opsloop.ci.workflow import render_workflow

TARGET_S = 30.0


def _print(title: str, steps: list) -> tuple[float, float]:
    wall, cpu = sum(s.seconds for s in steps), sum(s.cpu_seconds for s in steps)
    print(f"{title}: {wall:.1f} s wall, {cpu:.1f} s CPU")
    for step in steps:
        state = "ok" if step.returncode == 0 else f"exit {step.returncode}"
        print(
            f"  {step.seconds:6.1f} s wall {step.cpu_seconds:5.1f} s CPU  {state:7}  "
            f"{step.command[:80]}"
        )
        if step.returncode != 0:
            print(step.output[-2000:])
    return wall, cpu


def main() -> None:
    host, server = serve()
    try:
        with tempfile.TemporaryDirectory(prefix="opsloop-ci-bench-") as tmp:
            root = Path(tmp) / "project"
            write_project(root)
            spec = WorkflowSpec(model="cancer-clf", policy="gate.yaml")
            workflow = yaml.safe_load(render_workflow("github", spec))
            _print(
                "push to main (the base's runs, cache cold)",
                run_steps(root, workflow_steps(workflow, False), runner_env(root, {})),
            )
            git(root, "checkout", "-qb", "feature")
            env = runner_env(
                root,
                {
                    "GITHUB_HEAD_REF": "feature",
                    "GITHUB_REPOSITORY": "acme/churn",
                    "OPSLOOP_CI_PR": "1",
                    "GITHUB_API_URL": host.url,
                    "GITHUB_TOKEN": GOOD_TOKEN,
                },
            )
            noop = _print(
                "pull request, nothing changed (no-op)",
                run_steps(root, workflow_steps(workflow, True), env),
            )
            git(root, "checkout", "-qb", "feature-cold")
            uncached = [
                c + " --no-cache" if c.startswith("opsloop pipelines run") else c
                for c in workflow_steps(workflow, True)
            ]
            cold = _print(
                "peer: the same pull request job, pipeline cache off (--no-cache)",
                run_steps(root, uncached, env | {"GITHUB_HEAD_REF": "feature-cold"}),
            )
    finally:
        server.shutdown()
    verdict = "within" if noop[0] <= TARGET_S else "OVER"
    print(
        f"no-op job {noop[0]:.1f} s wall ({verdict} the {TARGET_S:.0f} s target), "
        f"{noop[1]:.1f} s CPU; with the cache off {cold[0]:.1f} s wall, {cold[1]:.1f} s CPU; "
        f"ratio uncached/no-op {cold[0] / noop[0]:.2f}x wall, {cold[1] / noop[1]:.2f}x CPU"
    )
    print(
        f"load average while measured: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores "
        "(wall time grows with it; CPU time is what an idle runner would take, about)"
    )


if __name__ == "__main__":
    main()
