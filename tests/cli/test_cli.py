"""The ``opsloop`` command as a user runs it: exit codes, --json, errors. Real processes where
the point is the installed command; a long session of commands runs in this process
(tests/cli/support.py)."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.cli.quickstart_lines import parse
from tests.cli.quickstart_lines import suggestions
from tests.cli.support import in_process

OPSLOOP = [str(Path(sys.executable).with_name("opsloop"))]


def run(*args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([*OPSLOOP, *args], capture_output=True, text=True, timeout=120)
    if ok:
        assert done.returncode == 0, done.stderr
    return done


def test_quickstart_then_explore(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # The installed command for the quickstart a user starts with, in an 80-column terminal;
    # what they explore after it runs in this process (the same commands, without a Python
    # start each).
    env = {**os.environ, "COLUMNS": "80", "LINES": "40"}
    started = subprocess.run([*OPSLOOP, "quickstart", "--epochs", "5"], capture_output=True,
                             text=True, timeout=300, env=env)  # fmt: skip
    assert started.returncode == 0, started.stderr
    out = printed = started.stdout
    cli = in_process(capsys)
    assert "Where to look next" in out
    drift = _check_suggestions(printed)
    listing = json.loads(
        cli("runs", "list", "-e", "quickstart", "--json", "-o", "metrics.val_f1 DESC").stdout
    )
    runs = listing["items"]
    trials = [r for r in runs if "opsloop.trial.number" in r["data"]["tags"]]
    assert len(trials) == 4 and trials[0]["data"]["metrics"]["val_f1"] > 0.9
    tags = [r["data"]["tags"] for r in runs]
    steps = {t["opsloop.step"]: r for t, r in zip(tags, runs, strict=True) if "opsloop.step" in t}
    assert set(steps) == {"load_table", "validate", "split", "sweep", "publish", "gate"}
    best, other = trials[0]["info"]["run_id"], trials[1]["info"]["run_id"]
    assert "val_f1" in cli("runs", "compare", best, other).stdout
    (pipeline_run,) = [r["info"]["run_id"] for r in runs if not r["info"]["parent_run_id"]]
    assert "python.version" in cli("runs", "env", pipeline_run).stdout
    history = json.loads(cli("runs", "metric", best, "val_loss", "--json").stdout)
    assert history["steps"] == [0, 1, 2, 3, 4]
    files = json.loads(cli("runs", "artifacts", best, "--json").stdout)
    assert {"model/model.skops", "predictions/validation.parquet"} <= {f["path"] for f in files}
    cli("runs", "download", best, "model", "--dst", str(tmp_path))
    assert (tmp_path / "model" / "model.skops").stat().st_size > 0
    filtered = json.loads(
        cli("runs", "list", "-e", "quickstart", "-f", "params.penalty = 'l1'", "--json").stdout
    )
    assert len(filtered["items"]) == 1
    total = len(runs)
    cli("runs", "delete", best)
    remaining = json.loads(cli("runs", "list", "-e", "quickstart", "--json").stdout)["items"]
    assert len(remaining) == total - 1
    cli("runs", "restore", best)
    shown = json.loads(cli("data", "show", "breast-cancer@1", "--json").stdout)
    assert shown["version"]["validation_status"] == "passed"
    assert shown["version"]["table"]["rows"] == 569
    readers = {steps[s]["info"]["run_id"] for s in ("load_table", "validate")} | {pipeline_run}
    assert {x["relation"] for x in shown["lineage"]} == {"input"}  # the loop's retraining too
    assert readers <= {x["run_id"] for x in shown["lineage"]}
    out = json.loads(cli("data", "show", "breast-cancer-predictions", "--json").stdout)
    assert out["lineage"][0]["relation"] == "output"
    traces = json.loads(cli("traces", "list", "--tag", "quickstart", "--json").stdout)["items"]
    assert len(traces) == 12 and all(t["cost"] > 0 and "thumbs" in t["scores"] for t in traces)
    evals = json.loads(cli("eval", "list", "--json").stdout)
    prompt_eval = evals[-1]  # oldest last: the prompt's suite, before the fine-tuning gate
    assert prompt_eval["suite"] == "support-answers" and prompt_eval["passed"]
    sft = json.loads(cli("data", "show", "support-sft@1", "--json").stdout)
    assert sft["version"]["file_count"] == 1
    _check_llm_loop(cli, printed)
    (loop,) = json.loads(cli("loop", "status", "breast-cancer-clf", "--json").stdout)
    assert loop["loop"]["stage"] in ("promoted", "rolled_back", "rejected"), loop["loop"]
    stages = [h["stage"] for h in loop["loop"]["history"]]
    assert stages[:4] == ["triggered", "training", "gating", "rolling_out"]
    assert "loop: " in printed and "scanner is recalibrated" in printed
    alerts = json.loads(cli("alerts", "list", "--json").stdout)
    assert alerts[0]["rule"] == "data-drift"
    assert alerts[0]["deliveries"]["log"]["status"] == "delivered"
    checks = json.loads(cli("monitors", "runs", "breast-cancer-watch", "--json").stdout)
    assert [c["status"] for c in checks][-2:] == ["alerting", "ok"]  # oldest last
    again = cli("quickstart", "--epochs", "5").stdout
    assert "unchanged: breast-cancer@1" in again  # same bytes, same version
    assert again.count("cached from run") == 5  # every step but the gate
    assert f"opsloop pipelines show {pipeline_run}" in printed
    assert "support-sft@2" in again  # eleven more thumbs-up chats: the next version
    traces = json.loads(cli("traces", "list", "--tag", "quickstart", "--json").stdout)["items"]
    assert len(traces) == 24  # a second run traces new conversations, never reuses ids
    # the same base fine-tuned on the new version, gated against the promoted one
    assert "support-bot@3 ← support-bot@1 + LoRA on support-sft@2" in again
    # The drift command the first run suggested is pinned to that run's export: it still
    # finds the drift that run made.
    assert "dataset: DRIFT" in cli(*drift[1:]).stdout
    assert (tmp_path / "drift.html").stat().st_size > 0


def _check_llm_loop(cli: Any, printed: str) -> None:
    """The LLM loop closed: ``support-bot@2`` is a LoRA adapter on ``support-bot@1`` trained on
    the thumbs-up chats, the eval gate passed it against the base, the gateway canaried it
    step by step and promoted it, and ``champion`` moved to it; its greedy answers are the help
    center's where the base declined, and it still declines what the shop does not do."""
    from opsloop.app.quickstart_lm import HELP_CENTER
    from opsloop.app.quickstart_lm import REFUSAL

    shown = json.loads(cli("models", "show", "support-bot", "--json").stdout)
    assert shown["model"]["aliases"] == {"champion": 2, "candidate": 2}
    tuned = next(v for v in shown["versions"] if v["number"] == 2)["tags"]
    assert tuned["opsloop.finetune.kind"] == "lora-adapter"
    assert tuned["opsloop.finetune.base"] == "support-bot@1"
    assert tuned["opsloop.finetune.gate"].startswith("passed vs support-bot@1 (eval run ")
    gate_run = tuned["opsloop.finetune.gate"].rsplit(" ", 1)[1].rstrip(")")
    results = json.loads(cli("eval", "show", gate_run, "--json").stdout)["results"]
    answers: dict[str, dict[str, str]] = {}
    for r in results:
        answers.setdefault(r["vars"]["question"], {})[r["provider"]] = r["output"]
    assert answers["I forgot my password"]["candidate"] == HELP_CENTER["password"]
    assert answers["Refund status?"]["candidate"] == HELP_CENTER["refund"]
    assert answers["Where's my order?"]["candidate"] == HELP_CENTER["order"]
    assert answers["Do you ship to Mars?"] == {"champion": REFUSAL, "candidate": REFUSAL}
    for question in ("I forgot my password", "Refund status?", "Where's my order?"):
        before = answers[question]["champion"]
        assert "Sorry" in before and before != answers[question]["candidate"], before
    history = json.loads(cli("gateway-routes", "history", "support", "--json").stdout)
    assert [h["action"] for h in history] == ["start", "step", "promote"], history
    assert [h["share_after"] for h in history] == [25, 50, 100]
    assert history[-1]["details"]["candidate"]["errors"] == 0
    assert "answers before and after fine-tuning" in printed
    assert "gateway: promoted → support-bot@champion is support-bot@2" in printed


def _check_suggestions(printed: str) -> list[str]:
    """Every command the quickstart suggests, as a user copies it out of an 80-column
    terminal, is one whole line the CLI accepts; returns the suggested drift command."""
    pairs = suggestions(printed)
    assert len(pairs) >= 25
    leaves = set()
    for command, why in pairs:
        assert command.startswith("  opsloop "), command
        assert why.startswith("    # ") and len(why) > len("    # "), why
        argv = shlex.split(command)
        assert "#" not in argv, command  # the explanation is on the next line
        leaves.add(parse(argv[1:]).command_path)
    # Long ones too: at 80 columns rich used to wrap these mid-argument.
    assert {"opsloop pipelines show", "opsloop runs compare", "opsloop drift"} <= leaves
    assert any(len(command) > 80 for command, _ in pairs)
    compare = next(c for c, _ in pairs if " runs compare " in c).split()
    assert compare[-1] != compare[-2]  # the runner-up, not the best trial twice
    (drift,) = [shlex.split(c) for c, _ in pairs if c.startswith("  opsloop drift ")]
    assert "breast-cancer-live@" in drift[3]  # this run's export, pinned
    return drift


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["runs", "show", "123"], 2, "not a run id"),
        (["runs", "show", "0" * 32], 3, "does not exist"),
        (["runs", "list", "-f", "metrics.a >> 1"], 2, "column 12"),
        (["experiments", "show", "nope"], 3, "no experiment"),
        (["runs", "compare", "0" * 32], 2, "at least two"),
        (["experiments", "create", "x", "--tag", "novalue"], 2, "KEY=VALUE"),
        (["runs", "nosuchverb"], 2, "No such command"),
    ],
)
def test_bad_input_exits_non_zero_with_one_line(args: list[str], code: int, message: str) -> None:
    run("experiments", "create", "Default", ok=False)
    done = run(*args, ok=False)
    assert done.returncode == code
    assert message in done.stderr
    assert "Traceback" not in done.stderr


def test_duplicate_experiment_is_a_conflict() -> None:
    run("experiments", "create", "dup")
    done = run("experiments", "create", "dup", ok=False)
    assert done.returncode == 4 and "already exists" in done.stderr
    names = [e["name"] for e in json.loads(run("experiments", "list", "--json").stdout)]
    assert names == ["dup"]


def test_help_teaches_and_is_fast() -> None:
    started = time.monotonic()
    out = run("--help").stdout
    assert time.monotonic() - started < 5  # generous here; bench/ measures the real figure
    assert "quickstart" in out and "runs" in out
    assert "metrics.f1 > 0.8" in run("runs", "--help").stdout
    assert "web UI" in out
    assert "--no-browser" in run("ui", "--help").stdout


# ``opsloop NAME --help`` for each NAME given, in one fresh process: the first call adds only
# NAME's group, as the command does, and the others are commands of that same group.
_HELP_OF_EACH = """
import contextlib, io, json, sys
from opsloop.app.cli import main
helps = {}
for name in sys.argv[1:]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        try:
            main([name, "--help"])
        except SystemExit as exc:
            assert not exc.code, (name, exc.code)
    helps[name] = out.getvalue()
print(json.dumps(helps))
"""


def test_every_command_is_listed_and_reachable_when_only_its_group_is_loaded() -> None:
    """A process builds only the group its first word names; --help still lists them all.
    One process per group (not per command) asks each of its commands for its help."""
    from opsloop.app.cli import _ADDS_COMMANDS

    listed = run("--help").stdout
    for names in _ADDS_COMMANDS.values():
        done = subprocess.run([sys.executable, "-c", _HELP_OF_EACH, *names],
                              capture_output=True, text=True, timeout=120)  # fmt: skip
        assert done.returncode == 0, done.stderr
        helps = json.loads(done.stdout)
        for name in names:
            assert f" {name} " in listed, name
            assert "Usage: opsloop " + name in " ".join(helps[name].split())
    done = run("no-such-command", ok=False)
    assert done.returncode == 2 and "No such command" in done.stderr
