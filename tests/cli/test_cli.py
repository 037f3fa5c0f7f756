"""The ``opsloop`` command as a user runs it: real processes, exit codes, --json, errors."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

OPSLOOP = [str(Path(sys.executable).with_name("opsloop"))]


def run(*args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([*OPSLOOP, *args], capture_output=True, text=True, timeout=120)
    if ok:
        assert done.returncode == 0, done.stderr
    return done


def test_quickstart_then_explore(tmp_path: Path) -> None:
    out = printed = run("quickstart", "--epochs", "5").stdout
    assert "Where to look next" in out
    listing = json.loads(
        run("runs", "list", "-e", "quickstart", "--json", "-o", "metrics.val_f1 DESC").stdout
    )
    runs = listing["items"]
    trials = [r for r in runs if "opsloop.trial.number" in r["data"]["tags"]]
    assert len(trials) == 4 and trials[0]["data"]["metrics"]["val_f1"] > 0.9
    tags = [r["data"]["tags"] for r in runs]
    steps = {t["opsloop.step"]: r for t, r in zip(tags, runs, strict=True) if "opsloop.step" in t}
    assert set(steps) == {"load_table", "validate", "split", "sweep", "publish", "gate"}
    best, other = trials[0]["info"]["run_id"], trials[1]["info"]["run_id"]
    assert "val_f1" in run("runs", "compare", best, other).stdout
    (pipeline_run,) = [r["info"]["run_id"] for r in runs if not r["info"]["parent_run_id"]]
    assert "python.version" in run("runs", "env", pipeline_run).stdout
    history = json.loads(run("runs", "metric", best, "val_loss", "--json").stdout)
    assert history["steps"] == [0, 1, 2, 3, 4]
    files = json.loads(run("runs", "artifacts", best, "--json").stdout)
    assert {"model/model.skops", "predictions/validation.parquet"} <= {f["path"] for f in files}
    run("runs", "download", best, "model", "--dst", str(tmp_path))
    assert (tmp_path / "model" / "model.skops").stat().st_size > 0
    filtered = json.loads(
        run("runs", "list", "-e", "quickstart", "-f", "params.penalty = 'l1'", "--json").stdout
    )
    assert len(filtered["items"]) == 1
    total = len(runs)
    run("runs", "delete", best)
    remaining = json.loads(run("runs", "list", "-e", "quickstart", "--json").stdout)["items"]
    assert len(remaining) == total - 1
    run("runs", "restore", best)
    shown = json.loads(run("data", "show", "breast-cancer@1", "--json").stdout)
    assert shown["version"]["validation_status"] == "passed"
    assert shown["version"]["table"]["rows"] == 569
    readers = {steps[s]["info"]["run_id"] for s in ("load_table", "validate")} | {pipeline_run}
    assert {x["relation"] for x in shown["lineage"]} == {"input"}  # the loop's retraining too
    assert readers <= {x["run_id"] for x in shown["lineage"]}
    out = json.loads(run("data", "show", "breast-cancer-predictions", "--json").stdout)
    assert out["lineage"][0]["relation"] == "output"
    traces = json.loads(run("traces", "list", "--tag", "quickstart", "--json").stdout)["items"]
    assert len(traces) == 4 and all(t["cost"] > 0 and "thumbs" in t["scores"] for t in traces)
    evals = json.loads(run("eval", "list", "--json").stdout)
    assert evals[0]["suite"] == "support-answers" and evals[0]["passed"]
    sft = json.loads(run("data", "show", "support-sft@1", "--json").stdout)
    assert sft["version"]["file_count"] == 1
    (loop,) = json.loads(run("loop", "status", "breast-cancer-clf", "--json").stdout)
    assert loop["loop"]["stage"] in ("promoted", "rolled_back", "rejected"), loop["loop"]
    stages = [h["stage"] for h in loop["loop"]["history"]]
    assert stages[:4] == ["triggered", "training", "gating", "rolling_out"]
    assert "loop: " in printed and "scanner is recalibrated" in printed
    alerts = json.loads(run("alerts", "list", "--json").stdout)
    assert alerts[0]["rule"] == "data-drift"
    assert alerts[0]["deliveries"]["log"]["status"] == "delivered"
    checks = json.loads(run("monitors", "runs", "breast-cancer-watch", "--json").stdout)
    assert [c["status"] for c in checks][-2:] == ["alerting", "ok"]  # oldest last
    again = run("quickstart", "--epochs", "5").stdout
    assert "unchanged: breast-cancer@1" in again  # same bytes, same version
    assert again.count("cached from run") == 5  # every step but the gate
    assert f"opsloop pipelines show {pipeline_run}" in printed
    assert "support-sft@2" in again  # three more thumbs-up chats: the next version
    traces = json.loads(run("traces", "list", "--tag", "quickstart", "--json").stdout)["items"]
    assert len(traces) == 8  # a second run traces new conversations, never reuses ids


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


def test_every_command_is_listed_and_reachable_when_only_its_group_is_loaded() -> None:
    """A process builds only the group its first word names; --help still lists them all."""
    from opsloop.app.cli import _ADDS_COMMANDS

    listed = run("--help").stdout
    for names in _ADDS_COMMANDS.values():
        for name in names:
            assert f" {name} " in listed, name
            assert "Usage: opsloop " + name in " ".join(run(name, "--help").stdout.split())
    done = run("no-such-command", ok=False)
    assert done.returncode == 2 and "No such command" in done.stderr
