"""The registry as users reach it: the ``opsloop models`` commands (run in this process, one
refusal through the installed command; exit codes) and the REST API with raw HTTP (status codes
and messages for bad requests)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
import yaml

from tests.conftest import LiveServer
from tests.finetune.support import cli

from .conftest import policy

OPSLOOP = [str(Path(sys.executable).with_name("opsloop"))]


def run(*args: str, code: int = 0) -> subprocess.CompletedProcess[str]:
    """The installed command, where its exit code and what it prints are the point."""
    done = subprocess.run([*OPSLOOP, *args], capture_output=True, text=True, timeout=180)
    assert done.returncode == code, (args, done.returncode, done.stdout, done.stderr)
    return done


@pytest.fixture
def here(capsys: pytest.CaptureFixture[str]) -> Callable[..., subprocess.CompletedProcess[str]]:
    """``opsloop ARGS`` in this process (no interpreter start and imports per command), with
    what it wrote to stdout and stderr, shaped like ``run``'s answer."""

    def run_here(*args: str, code: int = 0) -> subprocess.CompletedProcess[str]:
        capsys.readouterr()
        exit_code, out = cli(*args)
        done = subprocess.CompletedProcess(args, exit_code, out, capsys.readouterr().err)
        assert done.returncode == code, (args, done.returncode, done.stdout, done.stderr)
        return done

    return run_here


def test_models_commands_end_to_end(
    tmp_path: Path,
    cancer_csv: Path,
    weak_model: Any,
    strong_model: Any,
    cancer: pd.DataFrame,
    here: Callable[..., subprocess.CompletedProcess[str]],
) -> None:
    import skops.io

    here("data", "add", str(cancer_csv), "--name", "cancer")
    for i, model in enumerate((strong_model, weak_model)):
        skops.io.dump(model, tmp_path / f"m{i}.skops")
        out = here("models", "register", "clf", "--file", str(tmp_path / f"m{i}.skops")).stdout
        assert f"registered clf@{i + 1}" in out
    gate = tmp_path / "gate.yaml"
    gate.write_text(yaml.safe_dump(policy()))
    promoted = here("models", "promote", "clf", "1", "--to", "champion", "--policy", str(gate))
    assert "passed" in promoted.stdout
    rejected = here("models", "promote", "clf@2", "--policy", str(gate), "--json", code=1)
    verdict = json.loads(rejected.stdout)["verdict"]
    assert verdict["passed"] is False and verdict["champion"]["ref"] == "clf@1"
    history = json.loads(here("models", "history", "clf", "--json").stdout)
    assert [e["kind"] for e in history] == ["rejected", "promoted"]
    shown = json.loads(here("models", "show", "clf", "--json").stdout)
    assert shown["model"]["aliases"] == {"champion": 1} and len(shown["versions"]) == 2
    evaluation = json.loads(
        here(
            "models", "evaluate", "clf@champion", "--data", "cancer@1", "--target", "target",
            "--slice", "mean radius", "--json",
        ).stdout
    )  # fmt: skip
    assert evaluation["metrics"]["f1"] > 0.9 and evaluation["dataset_ref"] == "cancer@1"
    here("models", "card-set", "clf@1", "--intended-use", "teaching", "--section", "owner=ml")
    card = here("models", "card", "clf@1").stdout
    assert "teaching" in card and "## Owner" in card and "cancer@1" in card
    cancer.drop(columns=["target"]).head(3).to_csv(tmp_path / "rows.csv", index=False)
    predictions = here("models", "predict", "clf@champion", str(tmp_path / "rows.csv")).stdout
    assert len(predictions.split()) == 3
    lineage = json.loads(here("lineage", "clf@1", "--json").stdout)
    assert {n["type"] for n in lineage["downstream"]} == {"evaluation"}
    set_policy = here("models", "set-policy", "clf", str(gate)).stdout
    assert "gate policy stored" in set_policy
    forced = here("models", "promote", "clf", "2", "--force", "--reason", "drill").stdout
    assert "forced" in forced


def test_models_command_errors(
    tmp_path: Path, here: Callable[..., subprocess.CompletedProcess[str]]
) -> None:
    assert "not registered" in run("models", "show", "ghost", code=3).stderr
    assert "invalid model name" in here("models", "version", "bad name@1", code=2).stderr
    assert (
        "does not exist" in here("models", "register", "x", "--file", "nope.skops", code=2).stderr
    )
    gate = tmp_path / "gate.yaml"
    gate.write_text("data: x@1\ntarget: y\nrules: [{metric: f1, between: 3}]\n")
    here("models", "register", "x", "--file", str(tmp_path), code=2)  # not a package
    err = here("models", "set-policy", "x", str(gate), code=2).stderr
    assert "invalid gate policy" in err or "not registered" in err
    help_text = here("models", "--help").stdout
    for command in ("register", "promote", "evaluate", "card", "history", "alias"):
        assert command in help_text


def test_rest_api_refuses_bad_requests_and_changes_nothing(
    tmp_path: Path, sqlite_url: str, strong_model: Any, cancer: pd.DataFrame
) -> None:
    from opsloop import Client

    with LiveServer(sqlite_url, str(tmp_path / "blobs")) as server:
        client = Client(server_url=server.url)
        client.models.register("clf", strong_model, input_example=cancer.head())
        api = httpx.Client(base_url=server.url + "/api")
        assert api.get("/models/clf/versions/1").json()["flavor"] == "sklearn"
        assert api.put("/models/clf/aliases/champion", json={"version": 1}).status_code == 200
        cases = [
            ("post", "/models/clf/versions", {"files": [["x", "zz", 1]]}, 400, "BLAKE3"),
            ("post", "/models/clf/versions", {}, 400, "pass run_id"),
            ("post", "/models/clf/versions", {"run_id": "0" * 32, "artifact_path": "m"}, 404, ""),
            ("get", "/models/clf/versions/9", None, 404, "clf@9 does not exist"),
            ("get", "/models/ghost", None, 404, "not registered"),
            ("delete", "/models/clf/versions/1", None, 409, "champion"),
            ("delete", "/models/clf", None, 409, "aliases"),
            ("put", "/models/clf/aliases/latest", {"version": 1}, 400, "cannot be moved"),
            ("put", "/models/clf/aliases/x", {"version": 0}, 400, "version"),
            ("post", "/models/clf/versions/1/promote", {}, 400, "no gate policy"),
            (
                "post",
                "/models/clf/versions/1/promote",
                {"policy": {"data": "d@1", "target": "t", "rules": [{"metric": "wat", "min": 1}]}},
                400,
                "unknown metric 'wat'",
            ),
            ("post", "/models/clf/versions/1/promote", {"force": True}, 400, "needs a reason"),
            ("patch", "/models/clf", {"gate_policy": {"data": "d@1"}}, 400, "gate policy"),
            ("post", "/evaluations", {"report": {}}, 400, "needs at least"),
            ("get", "/lineage", None, 400, "ref"),
        ]
        for method, path, body, status, message in cases:
            response = api.request(method, path, json=body)
            assert response.status_code == status, (path, body, response.text)
            assert message in response.json()["error"]["message"], (path, response.text)
        # nothing accepted before was touched by the refusals
        assert [v["number"] for v in api.get("/models/clf/versions").json()["items"]] == [1]
        assert api.get("/models/clf").json()["aliases"] == {"champion": 1}
        assert api.get("/models/clf").json()["gate_policy"] is None
        card = api.get("/models/clf/versions/champion/card", params={"format": "markdown"})
        assert card.headers["content-type"].startswith("text/markdown")
        assert card.text.startswith("# Model card: clf@1")
        client.close()
