"""A real server over HTTP: request bodies over their route's limit are refused with a 413
before they are read whole (and change nothing), and ``/metrics`` needs the server token or the
scrape token wherever a token is set, on ``opsloop server`` and ``opsloop serve`` alike."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from blake3 import blake3

from opsloop.store.packs import frame
from opsloop.web.limits import DEFAULT_MAX_BODY
from tests.conftest import LiveServer
from tests.conftest import free_port


def _chunks(total: int, size: int = 1 << 20) -> Iterator[bytes]:
    """A body sent chunked, with no Content-Length to refuse it by."""
    yield b'{"params": {"big": "'
    for _ in range(total // size):
        yield b"x" * size
    yield b'"}}'


def test_an_oversized_batch_is_refused_and_changes_nothing(sqlite_url: str, tmp_path: Path) -> None:
    with LiveServer(sqlite_url, str(tmp_path / "blobs")) as server:
        http = httpx.Client(base_url=server.url, timeout=60)
        exp = http.post("/api/experiments", json={"name": "limits"}).json()["experiment_id"]
        run_id = http.post("/api/runs", json={"experiment_id": exp}).json()["info"]["run_id"]
        batch = f"/api/runs/{run_id}/batch"
        assert http.post(batch, json={"params": {"a": 1}}).status_code == 200
        before = http.get(f"/api/runs/{run_id}").json()

        declared = b'{"params": {"big": "' + b"x" * (DEFAULT_MAX_BODY + 1) + b'"}}'
        refused = http.post(batch, content=declared, headers={"content-type": "application/json"})
        assert refused.status_code == 413, refused.text
        error = refused.json()["error"]
        assert error["code"] == "TOO_LARGE" and "16,777,216 bytes" in error["message"]
        assert error["details"]["limit"] == DEFAULT_MAX_BODY

        streamed = http.post(
            batch, content=_chunks(DEFAULT_MAX_BODY + (1 << 20)),
            headers={"content-type": "application/json"},
        )  # fmt: skip
        assert streamed.status_code == 413, streamed.text
        assert "16 MiB" in streamed.json()["error"]["message"]

        assert http.get(f"/api/runs/{run_id}").json() == before  # nothing of either was stored
        normal = http.post(batch, json={"params": {"b": 2}, "tags": {"t": "x"}})
        assert normal.status_code == 200, normal.text
        assert http.get(f"/api/runs/{run_id}").json()["data"]["params"] == {"a": "1", "b": "2"}

        # Routes that take big bodies keep their own, larger limits.
        blob = b"\x01" * (5 << 20)
        digest = blake3(blob).hexdigest()
        assert http.put(f"/api/blobs/{digest}", content=blob).status_code == 201
        assert http.get(f"/api/blobs/{digest}").content == blob
        big = b"\x02" * (DEFAULT_MAX_BODY + (1 << 20))  # over the JSON limit, under the batch's
        big_digest = blake3(big).hexdigest()
        assert http.post("/api/blobs/batch", content=frame([(big_digest, big)])).status_code == 201
        assert http.post("/api/blobs/missing", json={"digests": [big_digest]}).json() == {
            "digests": []
        }


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _check_metrics_guard(url: str, method: str, other_route: str) -> None:
    metrics = f"{url}/metrics"
    assert httpx.get(metrics).status_code == 401
    assert httpx.get(metrics, headers=_bearer("nope")).status_code == 403
    by_server_token = httpx.get(metrics, headers=_bearer("s3cret"))
    assert by_server_token.status_code == 200 and "# TYPE" in by_server_token.text
    assert httpx.get(metrics, headers=_bearer("scrape")).status_code == 200
    # the scrape token opens /metrics and nothing else
    other = httpx.request(method, f"{url}{other_route}", json={}, headers=_bearer("scrape"))
    assert other.status_code == 403


def test_server_metrics_need_the_server_or_the_scrape_token(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPSLOOP_METRICS_TOKEN", "scrape")
    with LiveServer(sqlite_url, str(tmp_path / "b"), token="s3cret") as server:
        _check_metrics_guard(server.url, "GET", "/api/experiments")
        assert httpx.get(f"{server.url}/healthz").status_code == 200
    with LiveServer(sqlite_url, str(tmp_path / "c")) as open_server:  # a scrape token alone
        assert httpx.get(f"{open_server.url}/metrics").status_code == 401
        assert httpx.get(f"{open_server.url}/metrics", headers=_bearer("scrape")).is_success
    monkeypatch.delenv("OPSLOOP_METRICS_TOKEN")
    with LiveServer(sqlite_url, str(tmp_path / "d")) as no_tokens:  # as before: open
        assert httpx.get(f"{no_tokens.url}/metrics").status_code == 200


def test_serve_metrics_need_the_server_or_the_scrape_token(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPSLOOP_TOKEN", "s3cret")
    monkeypatch.delenv("OPSLOOP_METRICS_TOKEN", raising=False)
    port = free_port()
    cli = str(Path(sys.executable).with_name("opsloop"))
    server = subprocess.Popen(
        [cli, "serve", "--port", str(port), "--metrics-token", "scrape"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, server.stdout.read().decode()  # type: ignore[union-attr]
            try:
                if httpx.get(f"{url}/healthz").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline
            time.sleep(0.2)
        _check_metrics_guard(url, "POST", "/v1/deployments/none/feedback")
        over = httpx.post(
            f"{url}/v1/deployments/none/predict", content=b"x" * ((10 << 20) + 1),
            headers=_bearer("s3cret"),
        )  # fmt: skip
        assert over.status_code == 413 and "10 MiB" in over.json()["error"]["message"]
    finally:
        server.terminate()
        server.wait(30)
