"""Hostile input to tracking gets a 400 that says why (never a 500, never a 503 that invites a
retry), through the local client, the HTTP client, the REST API and the web UI, on SQLite and
PostgreSQL; and whatever was accepted before it is still there afterwards."""

from __future__ import annotations

import httpx
import pytest

from opsloop import Client
from opsloop import InvalidInput
from opsloop.kernel.bounds import MAX_FILTER_CLAUSES
from opsloop.kernel.bounds import MAX_FILTER_DEPTH
from tests.conftest import LiveServer

BIG = 2**70
DEEP = "(" * 330 + "metrics.acc > 1" + ")" * 330
NOTS = "not " * 500 + "metrics.acc > 1"
WIDE = " or ".join(["metrics.acc > 1"] * 2000)


@pytest.mark.parametrize(
    ("bad", "limit"),
    [
        (DEEP, str(MAX_FILTER_DEPTH)),
        (NOTS, str(MAX_FILTER_DEPTH)),
        (WIDE, str(MAX_FILTER_CLAUSES)),
        ("params.p in (" + ",".join(["'x'"] * 2000) + ")", str(MAX_FILTER_CLAUSES)),
        ("metrics.acc > 99999999999999999999999", "64 bits"),
    ],
)
def test_filters_too_deep_or_too_large_are_invalid_input(
    client: Client, bad: str, limit: str
) -> None:
    client.create_experiment("exp")
    with pytest.raises(InvalidInput, match=limit) as caught:
        client.search_runs("exp", bad)
    assert "^" in caught.value.message


def test_filters_at_the_limits_still_run(client: Client) -> None:
    """The largest filter the parser admits compiles to SQL both databases accept."""
    experiment_id = client.create_experiment("exp").experiment_id
    run_id = client.create_run(experiment_id, capture_env=False).info.run_id
    client.log_batch(run_id, [("acc", 0.5, 0, 1)], params={"p": "7"})
    half = MAX_FILTER_CLAUSES // 2
    ors = " or ".join(f"metrics.acc > {i}" for i in range(half))
    ands = " and ".join(f"params.p != 'x{i}'" for i in range(MAX_FILTER_CLAUSES - half - 1))
    inner = f"({ors} or params.p = '7') and {ands}"
    pairs = (MAX_FILTER_DEPTH - 2) // 2  # "not (" twice a level, inner's "(" and one "not"
    nested = "not " + "not (" * pairs + inner + ")" * pairs
    assert len(client.search_runs("exp", inner).items) == 1
    assert len(client.search_runs("exp", nested).items) == 0  # an odd number of nots
    values = ",".join(f"'{i}'" for i in range(MAX_FILTER_CLAUSES))
    assert len(client.search_runs("exp", f"params.p in ({values})").items) == 1


def test_out_of_range_integers_are_refused_and_keep_what_was_accepted(client: Client) -> None:
    experiment_id = client.create_experiment("exp").experiment_id
    run_id = client.create_run(experiment_id, capture_env=False).info.run_id
    client.log_metric(run_id, "acc", 0.5, step=1)
    with pytest.raises(InvalidInput, match="step"):
        client.log_metric(run_id, "acc", 0.6, step=BIG)
    with pytest.raises(InvalidInput, match="timestamp"):
        client.log_metrics(run_id, {"acc": 0.6}, step=2, timestamp=BIG)
    with pytest.raises(InvalidInput):
        client.log_batch(run_id, [("acc", 0.7, BIG, 1)])
    with pytest.raises(InvalidInput):
        client.search_runs("exp", max_results=BIG)
    client.flush()
    history = client.get_metric_history(run_id, "acc")
    assert (history.steps, history.values) == ([1], [0.5])


def test_rest_api_and_pages_answer_400_naming_the_field(live_server: LiveServer) -> None:
    client = Client(server_url=live_server.url)
    experiment_id = client.create_experiment("exp").experiment_id
    run_id = client.create_run(experiment_id, capture_env=False).info.run_id
    client.log_batch(run_id, [("acc", 0.5, 1, 1)])
    api = httpx.Client(base_url=live_server.url + "/api", timeout=60)
    search = "/runs/search"
    cases = [
        ("post", search, {"experiment_ids": [experiment_id], "filter": DEEP}, "nests deeper"),
        ("post", search, {"experiment_ids": [experiment_id], "filter": NOTS}, "nests deeper"),
        ("post", search, {"experiment_ids": [experiment_id], "filter": WIDE}, "more than"),
        ("post", search, {"experiment_ids": [experiment_id], "max_results": BIG}, "max_results"),
        ("post", "/runs", {"experiment_id": experiment_id, "start_time": BIG}, "start_time"),
        ("post", "/runs", {"experiment_id": experiment_id, "start_time": False}, "start_time"),
        ("patch", f"/runs/{run_id}", {"end_time": BIG}, "end_time"),
        (
            "post",
            f"/runs/{run_id}/batch",
            {"metrics": {"series": {"acc": {"values": [1.0], "steps": [BIG], "timestamps": [1]}}}},
            "steps",
        ),
        ("get", f"/runs/{run_id}/metrics/acc/history?max_points={BIG}", None, "max_points"),
        ("get", f"/experiments?max_results={BIG}", None, "max_results"),
    ]
    for method, path, body, message in cases:
        response = api.request(method, path, json=body)
        assert response.status_code == 400, (path, response.text)
        error = response.json()["error"]
        assert error["code"] == "INVALID_INPUT" and message in error["message"], (path, error)
    page = httpx.get(f"{live_server.url}/experiments/{experiment_id}", params={"filter": DEEP})
    assert page.status_code == 400 and "nests deeper" in page.text
    # nothing accepted before the refusals was lost or changed
    runs = client.search_runs("exp").items
    assert [r.info.run_id for r in runs] == [run_id]
    assert runs[0].info.end_time is None
    assert client.get_metric_history(run_id, "acc").steps == [1]
    client.close()
