"""``opsloop ci report`` end to end: real runs on two branches of a real git repository, a real
model gate, eval suite runs, posted to the loopback GitHub and GitLab APIs; the exit code is
the gate's verdict."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from opsloop.app.cli import main
from opsloop.ci.hosts import MARKER

from .fake_hosts import GOOD_TOKEN
from .fake_hosts import READ_ONLY_TOKEN
from .fake_hosts import FakeHost
from .scenario import gate_policy
from .scenario import make_history
from .scenario import start_repo

THREAD = "/repos/acme/churn/issues/7/comments"
_RUNNER_VARS = (
    "GITHUB_HEAD_REF",
    "GITHUB_SHA",
    "GITHUB_REF",
    "GITHUB_REF_NAME",
    "GITHUB_EVENT_PATH",
    "GITHUB_STEP_SUMMARY",
    "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME",
    "CI_COMMIT_REF_NAME",
    "CI_COMMIT_SHA",
    "OPSLOOP_CI_TOKEN",
    "OPSLOOP_CI_PR",
)


@pytest.fixture
def history(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    import yaml

    from opsloop import Client

    for name in _RUNNER_VARS:
        monkeypatch.delenv(name, raising=False)
    repo = tmp_path / "repo"
    start_repo(repo)
    monkeypatch.chdir(repo)
    client = Client()
    try:
        made = make_history(client, repo)
    finally:
        client.close()
    (tmp_path / "gate.yaml").write_text(yaml.safe_dump(gate_policy()))
    strict = gate_policy(rules=[{"metric": "accuracy", "min": 0.99}])
    (tmp_path / "strict.yaml").write_text(yaml.safe_dump(strict))
    return made | {"tmp": tmp_path}


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as done:
        main(list(args))
    out = capsys.readouterr()
    return int(done.value.code or 0), out.out, out.err


def _github(monkeypatch: pytest.MonkeyPatch, host: FakeHost, tmp: Path, token: str) -> Path:
    summary = tmp / "summary.md"
    for name, value in {
        "GITHUB_API_URL": host.url,
        "GITHUB_REPOSITORY": "acme/churn",
        "GITHUB_TOKEN": token,
        "OPSLOOP_CI_PR": "7",
        "GITHUB_STEP_SUMMARY": str(summary),
    }.items():
        monkeypatch.setenv(name, value)
    return summary


def test_report_compares_branches_gates_and_updates_one_comment(
    history: dict[str, Any],
    fake_host: FakeHost,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    tmp = history["tmp"]
    summary = _github(monkeypatch, fake_host, tmp, GOOD_TOKEN)
    args = (
        "ci",
        "report",
        "--base",
        "main",
        "--model",
        "cancer-clf",
        "--policy",
        str(tmp / "gate.yaml"),
        "--post",
        "github",
    )
    code, out, err = cli(capsys, *args)  # head: the work tree's branch and commit
    assert code == 0, err
    assert "gate passed: report written to opsloop-ci/report.md; comment created" in out
    report = Path("opsloop-ci/report.md").read_text()
    head = f"feature ({history['commit'][:8]})"
    assert (
        report.startswith(MARKER) and f"## opsloop: `{head}` vs `main` · ✅ gate passed" in report
    )
    # the gate: the strong candidate from the feature's run vs the weak champion, every number
    assert "### Evaluation gate: `cancer-clf@2` vs cancer-clf@1 (@champion) on `cancer@1`" in report
    rule = next(
        line
        for line in report.splitlines()
        if "| f1 improves by at least 0.01" in line or line.startswith("| ✅ | f1")
    )
    assert rule.count("|") == 6 and "0.9" in rule
    # metrics: the feature's run against main's, with arrows and percentages
    accuracy = next(line for line in report.splitlines() if line.startswith("| cancer | accuracy"))
    assert "▲" in accuracy and "%)" in accuracy and "🟢" in accuracy
    loss = next(line for line in report.splitlines() if line.startswith("| cancer | log_loss"))
    assert "▼" in loss and "🟢" in loss  # lower is better
    assert f"{history['base_run'][:8]} → {history['head_run'][:8]}" in report
    # data: the versions each side's run read, diffed
    data = next(line for line in report.splitlines() if line.startswith("| cancer@2 | cancer@1"))
    assert "569 → 549" in data
    # evals: the suite's latest run and its regression
    assert "| capitals | ✅ passed | 2/3 (66.7%) | 50% | 100.0% → 66.7% | 1 |" in report
    assert "- `capitals`: " in report and "got 'I do not know.'" in report
    # the chart beside the file, linked from the file only; the summary has the comment's text
    assert Path("opsloop-ci/report.svg").read_text().startswith("<?xml")
    assert "![metric changes, head vs base](report.svg)" in report
    posted = fake_host.threads[THREAD]
    assert len(posted) == 1 and "report.svg" not in posted[0]["body"]
    assert summary.read_text().strip() == posted[0]["body"].strip()

    code, out, _ = cli(capsys, *args)  # the next push: the same comment, updated
    assert code == 0 and "comment updated" in out
    assert len(fake_host.threads[THREAD]) == 1
    assert [m for m, _ in fake_host.writes()] == ["POST", "PATCH"]


def test_a_failing_gate_exits_1_and_a_refused_comment_only_warns(
    history: dict[str, Any],
    fake_host: FakeHost,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    tmp = history["tmp"]
    summary = _github(monkeypatch, fake_host, tmp, READ_ONLY_TOKEN)
    out_file = tmp / "out" / "pr.md"
    code, out, err = cli(
        capsys,
        "ci",
        "report",
        "--head",
        "feature",
        "--model",
        "cancer-clf",
        "--policy",
        str(tmp / "strict.yaml"),
        "--post",
        "github",
        "--out",
        str(out_file),
    )
    assert code == 1  # the gate's verdict, not the comment's fate
    assert err.startswith("warning: the comment was not posted (")
    assert "HTTP 403" in err and str(out_file) in err and len(err.strip().splitlines()) == 1
    assert "gate FAILED" in out
    report = out_file.read_text()
    assert "❌ gate failed" in report and "< 0.99" in report
    assert "❌ gate failed" in summary.read_text()
    assert THREAD not in fake_host.threads


def test_gitlab_note_and_json(
    history: dict[str, Any],
    fake_host: FakeHost,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import json

    for name, value in {
        "CI_API_V4_URL": f"{fake_host.url}/api/v4",
        "CI_PROJECT_ID": "acme/churn",
        "CI_MERGE_REQUEST_IID": "12",
        "GITLAB_TOKEN": GOOD_TOKEN,
        "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME": "feature",
    }.items():
        monkeypatch.setenv(name, value)
    code, out, err = cli(
        capsys,
        "ci",
        "report",
        "--candidate",
        "cancer-clf@2",
        "--policy",
        str(history["tmp"] / "gate.yaml"),
        "--post",
        "gitlab",
        "--json",
    )
    assert code == 0, err
    shown = json.loads(out)
    assert shown["exit_code"] == 0 and shown["posted"]["action"] == "created"
    assert shown["gate"]["candidate"]["ref"] == "cancer-clf@2"
    assert shown["gate"]["champion"]["ref"] == "cancer-clf@1"
    assert {r["metric"] for r in shown["gate"]["rules"]} == {"f1", "accuracy"}
    notes = fake_host.threads["/api/v4/projects/acme%2Fchurn/merge_requests/12/notes"]
    assert len(notes) == 1 and notes[0]["body"].startswith(MARKER)


def test_bad_input_is_one_line_with_an_error_code(
    history: dict[str, Any], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = cli(capsys, "ci", "report", "--post", "bitbucket")
    assert code == 2 and err == "error: --post takes github or gitlab, got 'bitbucket'\n"
    code, _, err = cli(capsys, "ci", "report", "--post", "github")
    assert code == 2 and err == "error: --post needs GITHUB_REPOSITORY in the environment\n"
    code, _, err = cli(capsys, "ci", "report", "--model", "ghost")
    assert code == 3 and err == "error: model 'ghost' is not registered\n"
    code, _, err = cli(capsys, "ci", "report", "--head", "nobody", "--model", "cancer-clf")
    assert code == 3 and err.startswith("error: none of the head's 0 run(s) registered")
    code, _, err = cli(capsys, "ci", "report", "--model", "cancer-clf")
    assert code == 2 and "has no gate policy" in err and len(err.splitlines()) == 1
