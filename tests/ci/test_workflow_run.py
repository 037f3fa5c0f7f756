"""The generated GitHub workflow's steps, run here for real: on ``main`` (the base's runs),
then on an unchanged pull request branch, where the pipeline is all cache hits and the
report is judged and posted to the loopback GitHub API. (Its wall time is measured by
``bench/ci_noop.py``, not asserted here.)"""

from __future__ import annotations

from pathlib import Path

import yaml

from opsloop.ci.workflow import WorkflowSpec
from opsloop.ci.workflow import render_workflow
from tests.gitrepos import git

from .fake_hosts import GOOD_TOKEN
from .fake_hosts import FakeHost
from .project import run_steps
from .project import runner_env
from .project import workflow_steps
from .project import write_project


def test_generated_steps_run_and_an_unchanged_branch_reuses_the_cache(
    tmp_path: Path, fake_host: FakeHost
) -> None:
    root = tmp_path / "project"
    write_project(root)
    spec = WorkflowSpec(model="cancer-clf", policy="gate.yaml")
    workflow = yaml.safe_load(render_workflow("github", spec))

    base = run_steps(root, workflow_steps(workflow, False), runner_env(root, {}))
    assert [r.returncode for r in base] == [0, 0, 0], base[-1].output
    assert "validation passed" in base[0].output

    git(root, "checkout", "-qb", "feature")
    env = runner_env(
        root,
        {
            "GITHUB_HEAD_REF": "feature",
            "GITHUB_REPOSITORY": "acme/churn",
            "OPSLOOP_CI_PR": "3",
            "GITHUB_API_URL": fake_host.url,
            "GITHUB_TOKEN": GOOD_TOKEN,
            "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md"),
        },
    )
    head = run_steps(root, workflow_steps(workflow, True), env)
    assert [r.returncode for r in head] == [0, 0, 0, 0], head[-1].output
    pipeline = head[1].output
    assert "cached" in pipeline and "ran" not in pipeline.replace("training", ""), pipeline
    assert "gate passed" in head[-1].output and "comment created" in head[-1].output
    body = fake_host.threads["/repos/acme/churn/issues/3/comments"][0]["body"]
    assert "`cancer-clf@1`" in body and "| capitals | ✅ passed | 2/2" in body
