"""The CI workflows ``opsloop ci init`` writes: GitHub Actions and GitLab CI.

Both run the same steps: install opsloop, version and validate the training data, run the
pipeline, run the eval suite, and on a pull/merge request judge the gate and post the report.

Why an unchanged pipeline costs seconds: a pipeline's cache is the tracking store itself
(finished step runs keyed by code, params, inputs, environment and data; see
:mod:`opsloop.pipelines.cache_index`). With ``OPSLOOP_SERVER_URL`` (and ``OPSLOOP_TOKEN``) set
to the team's server, every job reads that one store, so a step computed on any branch is a
hit everywhere. Without a server, the embedded store (``OPSLOOP_HOME``) is kept between jobs by
the host's cache, restored from the branch's last job, else from the base branch's.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from opsloop.errors import Conflict
from opsloop.errors import InvalidInput

__all__ = ["HOSTS", "WorkflowSpec", "render_workflow", "workflow_path", "write_workflow"]

HOSTS = ("github", "gitlab")
_REPORT = "opsloop-ci/report.md"


@dataclass(frozen=True)
class WorkflowSpec:
    """What the workflow runs; every path is relative to the repository's root."""

    base: str = "main"
    data: str = "data/train.csv"
    dataset: str = "train"
    expect: str = "data/expectations.yaml"
    pipeline: str = "pipeline.py:training"
    suite: str | None = "evals/suite.yaml"
    model: str | None = None
    policy: str | None = None

    def commands(self, host: str) -> dict[str, str]:
        """Step name → the opsloop command line it runs."""
        report = f"opsloop ci report --base {self.base} --out {_REPORT} --post {host}"
        if self.model:
            report += f" --model {self.model}"
        if self.policy:
            report += f" --policy {self.policy}"
        steps = {
            "Version and validate the data": (
                f"opsloop data add {self.data} --name {self.dataset} --expect {self.expect}"
            ),
            "Run the pipeline (cached in the shared store)": (
                f"opsloop pipelines run {self.pipeline}"
            ),
        }
        if self.suite:
            steps["Run the eval suite"] = f"opsloop eval run {self.suite}"
        steps["Judge the gate and post the report"] = report
        return steps


def workflow_path(host: str) -> Path:
    if host not in HOSTS:
        raise InvalidInput(f"unknown CI host {host!r}: use github or gitlab")
    return Path(".github/workflows/opsloop.yml") if host == "github" else Path(".gitlab-ci.yml")


_GITHUB_HEAD = """\
# Written by `opsloop ci init github`; edit freely (paths, model, policy, Python version).
# Secrets: OPSLOOP_SERVER_URL and OPSLOOP_TOKEN name the team's opsloop server, whose store
# holds the pipeline cache (an unchanged pipeline costs seconds); without them the embedded
# store in .opsloop is kept between runs by actions/cache. The report comment is posted with
# the job's GITHUB_TOKEN (pull-requests: write); the gate's verdict is the job's result.
name: opsloop
on:
  pull_request:
  push:
    branches: [{base}]
permissions:
  contents: read
  issues: write
  pull-requests: write
env:
  OPSLOOP_SERVER_URL: ${{{{ secrets.OPSLOOP_SERVER_URL }}}}
  OPSLOOP_TOKEN: ${{{{ secrets.OPSLOOP_TOKEN }}}}
  OPSLOOP_HOME: ${{{{ github.workspace }}}}/.opsloop
jobs:
  opsloop:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - uses: actions/setup-python@v5
        with:
          python-version: "3.11"
      - uses: actions/cache@v4
        with:
          path: .opsloop
          key: opsloop-${{{{ github.head_ref || github.ref_name }}}}-${{{{ github.sha }}}}
          restore-keys: |
            opsloop-${{{{ github.head_ref || github.ref_name }}}}-
            opsloop-{base}-
      - name: Install opsloop
        run: pip install opsloop
"""

_GITHUB_TAIL = """\
      - name: Keep the report and its chart
        if: ${{ !cancelled() && github.event_name == 'pull_request' }}
        uses: actions/upload-artifact@v4
        with:
          name: opsloop-ci-report
          path: opsloop-ci/
"""


def _github(spec: WorkflowSpec) -> str:
    out = [_GITHUB_HEAD.format(base=spec.base)]
    for name, command in spec.commands("github").items():
        step = [f"      - name: {name}"]
        if command.startswith("opsloop eval run"):
            step += ["        id: evals", "        continue-on-error: true"]
        if command.startswith("opsloop ci report"):
            step += [
                "        if: ${{ !cancelled() && github.event_name == 'pull_request' }}",
                "        env:",
                "          GITHUB_TOKEN: ${{ secrets.GITHUB_TOKEN }}",
            ]
        out.append("\n".join([*step, f"        run: {command}"]) + "\n")
    out.append(_GITHUB_TAIL)
    if spec.suite:
        out.append(
            "      - name: Fail on the eval suite's verdict\n"
            "        if: ${{ steps.evals.outcome == 'failure' }}\n"
            "        run: exit 1\n"
        )
    return "".join(out)


_GITLAB_HEAD = """\
# Written by `opsloop ci init gitlab`; edit freely (paths, model, policy, image).
# CI/CD variables: OPSLOOP_SERVER_URL and OPSLOOP_TOKEN name the team's opsloop server, whose
# store holds the pipeline cache (an unchanged pipeline costs seconds); without them the
# embedded store in .opsloop is kept by GitLab's cache. OPSLOOP_CI_TOKEN: a project access
# token with api scope, to post the report note (CI_JOB_TOKEN cannot write notes).
variables:
  OPSLOOP_HOME: "$CI_PROJECT_DIR/.opsloop"
  PIP_CACHE_DIR: "$CI_PROJECT_DIR/.cache/pip"

opsloop:
  image: python:3.11-slim
  rules:
    - if: $CI_PIPELINE_SOURCE == "merge_request_event"
    - if: $CI_COMMIT_BRANCH == "{base}"
  cache:
    - key: opsloop-$CI_COMMIT_REF_SLUG
      fallback_keys: [opsloop-{base}]
      paths: [.opsloop/, .cache/pip/]
  script:
    - pip install opsloop
"""


def _gitlab(spec: WorkflowSpec) -> str:
    lines = [_GITLAB_HEAD.format(base=spec.base)]
    for command in spec.commands("gitlab").values():
        if command.startswith("opsloop eval run"):
            lines.append(f"    - {command} || EVALS_FAILED=1\n")
        elif command.startswith("opsloop ci report"):
            lines.append(
                f'    - if [ "$CI_PIPELINE_SOURCE" = "merge_request_event" ]; then {command}; fi\n'
            )
        else:
            lines.append(f"    - {command}\n")
    if spec.suite:
        lines.append('    - test -z "$EVALS_FAILED"\n')
    lines.append("  artifacts:\n    when: always\n    paths: [opsloop-ci/]\n")
    return "".join(lines)


def render_workflow(host: str, spec: WorkflowSpec) -> str:
    """The workflow file's text for ``host`` (``github`` or ``gitlab``)."""
    workflow_path(host)  # refuses an unknown host
    return _github(spec) if host == "github" else _gitlab(spec)


def write_workflow(root: Path, host: str, spec: WorkflowSpec, *, force: bool = False) -> Path:
    """Write the workflow under ``root``; an existing file is kept unless ``force``.

    Raises:
        Conflict: The file exists and ``force`` is not set.
    """
    path = root / workflow_path(host)
    if path.exists() and not force:
        raise Conflict(f"{path} exists: pass --force to overwrite it")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_workflow(host, spec), encoding="utf-8")
    return path
