"""Lineage of every kind, from wherever it is asked (issue 28).

A batch output was made by a model version from a data version, not by a run, and a feedback
export by traces: ``data show`` said "no run has logged this version", and ``opsloop lineage
churn-scores@1`` looked for a model of that name. These tests build both for real (a trained
scikit-learn model, traced and rated answers) and read them back through the SDK, the CLI and
the version's page; ``lineage`` works out the kind of node a reference names.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

import opsloop
from opsloop.errors import InvalidInput
from opsloop.errors import NotFound
from tests.conftest import LiveServer


def _register_model(client: Any, tmp_path: Path) -> Path:
    """``clf@1`` (a logistic regression on iris) and ``patients@1``, the table it scores."""
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    frame = load_iris(as_frame=True).frame
    features = frame.drop(columns="target")
    model = LogisticRegression(max_iter=500).fit(features, frame["target"])
    client.models.register("clf", model, input_example=features.head())
    table = tmp_path / "patients.csv"
    features.to_csv(table, index=False)
    client.data.add(table, "patients")
    return table


def test_a_batch_output_shows_its_model_and_input_and_lineage_finds_its_kind(
    client: Any, tmp_path: Path
) -> None:
    table = _register_model(client, tmp_path)
    result = client.deployments.predict_batch("clf@1", "patients@1", "churn-scores")
    assert result.output == "churn-scores@1"

    links = client.data.lineage("churn-scores@1")
    assert sorted((link.direction, link.node_type, link.relation) for link in links) == [
        ("upstream", "dataset_version", "scored"),
        ("upstream", "model_version", "predicted"),
    ]
    scored = next(link for link in links if link.relation == "scored")
    assert (scored.ref, scored.label, scored.run_id) == ("patients@1", "data patients@1", None)
    model = next(link for link in links if link.relation == "predicted")
    # The server names every kind of node; a local client names them when it was handed the
    # lineage catalog, else shows a node of a domain above data by its kind and short id.
    assert model.label == "model clf@1"
    if client.settings.is_remote:
        assert model.label == "model clf@1"
    below = client.data.lineage("patients@1")
    assert [(link.direction, link.relation, link.ref) for link in below] == [
        ("downstream", "scored", "churn-scores@1")
    ]

    graph = client.models.lineage("churn-scores@1")  # no kind: the one kind with that name
    assert graph["node"]["label"] == "data churn-scores@1"
    assert {n["label"] for n in graph["upstream"]} == {"model clf@1", "data patients@1"}
    assert client.models.lineage("clf@1")["node"]["label"] == "model clf@1"

    client.data.add(table, "clf")  # now a dataset has the model's name too
    with pytest.raises(InvalidInput, match=r"names a model version and a dataset version; .*"
                       r"kind \(--kind\): model or data"):  # fmt: skip
        client.models.lineage("clf@1")
    assert client.models.lineage("clf@1", kind="data")["node"]["label"] == "data clf@1"
    with pytest.raises(NotFound, match="searched model versions, dataset versions, runs"):
        client.models.lineage("ghost@1")


def _answer(client: Any, question: str) -> str:
    with client.traces.tracer.span(
        "support", kind="chain", input=[{"role": "user", "content": question}]
    ) as span:
        span.update(output="an answer")
    return str(span.trace_id)


def test_a_feedback_export_shows_its_traces_in_the_cli_and_on_its_page(
    sqlite_url: str, tmp_path: Path
) -> None:
    with LiveServer(sqlite_url, str(tmp_path / "server-blobs")) as server:
        client = opsloop.Client(server_url=server.url)
        traces = [_answer(client, "How?"), _answer(client, "Why?")]
        client.traces.flush()
        for trace in traces:
            client.traces.score(trace, "thumbs", True)
        export = client.feedback.export("support-sft", filter={"scores": ["thumbs=true"]})
        _register_model(client, tmp_path)
        client.deployments.predict_batch("clf@1", "patients@1", "churn-scores")

        links = client.data.lineage(export.ref)
        assert sorted(link.node_id for link in links) == sorted(traces)
        assert {(link.direction, link.relation) for link in links} == {("upstream", "exported_to")}
        assert all(link.label.startswith("trace support (") for link in links)

        cli = str(Path(sys.executable).with_name("opsloop"))
        env = {"OPSLOOP_SERVER_URL": server.url, "PATH": str(Path(sys.executable).parent)}

        def run(*args: str, code: int = 0) -> str:
            done = subprocess.run(
                [cli, *args], capture_output=True, text=True, timeout=120, env=env
            )
            assert done.returncode == code, done.stdout + done.stderr
            return done.stdout + done.stderr

        shown = run("data", "show", export.ref)
        assert shown.count("exported_to") == 2 and "trace support (" in shown
        assert "no run has logged" not in shown
        batch = run("data", "show", "churn-scores@1")
        assert "predicted" in batch and "model clf@1" in batch
        assert "scored" in batch and "data patients@1" in batch
        tree = run("lineage", "churn-scores@1")
        assert "data churn-scores@1" in tree and "model clf@1" in tree
        assert "is not registered" in run("lineage", "churn-scores@1", "--kind", "model", code=3)
        assert "searched model versions" in run("lineage", "nothing@1", code=3)

        page = httpx.get(f"{server.url}/datasets/support-sft/versions/1").text
        assert "exported_to" in page and all(f"({trace[:8]})" in page for trace in traces)
        page = httpx.get(f"{server.url}/datasets/churn-scores/versions/1").text
        assert "model clf@1" in page and "data patients@1" in page
        client.close()
