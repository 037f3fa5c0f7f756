"""``opsloop ci init``: the workflows it writes are valid YAML, every opsloop command in them
is a command the CLI has (with options it takes), and an existing file is kept."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from opsloop.app.cli import main


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as done:
        main(list(args))
    out = capsys.readouterr()
    return int(done.value.code or 0), out.out, out.err


def shell_lines(host: str, workflow: dict[str, Any]) -> list[str]:
    if host == "github":
        return [s["run"] for s in workflow["jobs"]["opsloop"]["steps"] if "run" in s]
    return list(workflow["opsloop"]["script"])


def opsloop_commands(lines: list[str]) -> list[list[str]]:
    """Every ``opsloop ...`` command in the shell lines, as arguments (after ``opsloop``)."""
    found = []
    for line in lines:
        for part in re.split(r";|&&|\|\||\bthen\b", line):
            words = shlex.split(part)
            if words and words[0] == "opsloop":
                found.append(words[1:])
    return found


@pytest.mark.parametrize("host", ["github", "gitlab"])
def test_init_writes_a_valid_workflow_of_real_commands(
    host: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = cli(capsys, "ci", "init", host, "--model", "churn", "--policy", "gate.yaml")
    assert code == 0, err
    path = tmp_path / (".github/workflows/opsloop.yml" if host == "github" else ".gitlab-ci.yml")
    assert out == f"wrote {path.relative_to(tmp_path)}\n"
    workflow = yaml.safe_load(path.read_text())
    commands = opsloop_commands(shell_lines(host, workflow))
    assert [c[:2] for c in commands] == [
        ["data", "add"],
        ["pipelines", "run"],
        ["eval", "run"],
        ["ci", "report"],
    ]
    assert commands[-1][commands[-1].index("--post") + 1] == host
    for args in commands:  # each parses with the real CLI: the command and all its options
        code, _, err = cli(capsys, *args, "--help")
        assert code == 0, f"opsloop {shlex.join(args)}: {err}"
    if host == "github":
        triggers = workflow[True]  # YAML 1.1 reads the key `on` as true
        assert set(triggers) == {"pull_request", "push"}
        assert workflow["permissions"]["pull-requests"] == "write"
        assert "OPSLOOP_SERVER_URL" in workflow["env"]
    else:
        assert workflow["opsloop"]["cache"][0]["fallback_keys"] == ["opsloop-main"]
        assert workflow["opsloop"]["artifacts"]["paths"] == ["opsloop-ci/"]


def test_init_keeps_an_existing_file_unless_forced(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ours = tmp_path / ".gitlab-ci.yml"
    ours.write_text("stages: [test]\n")
    code, _, err = cli(capsys, "ci", "init", "gitlab")
    assert code == 4 and err == f"error: {ours} exists: pass --force to overwrite it\n"
    assert ours.read_text() == "stages: [test]\n"
    code, _, _ = cli(capsys, "ci", "init", "gitlab", "--force", "--suite", "none")
    assert code == 0
    script = yaml.safe_load(ours.read_text())["opsloop"]["script"]
    assert not any("eval run" in line or "EVALS_FAILED" in line for line in script)
    code, _, err = cli(capsys, "ci", "init", "jenkins")
    assert code == 2 and err == "error: unknown CI host 'jenkins': use github or gitlab\n"
