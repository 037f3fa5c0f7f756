"""``/healthz`` for liveness, ``/healthz?deep=1`` and ``/readyz`` for both stores on their own:
a server whose blob store cannot be written says so before the first push fails."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.conftest import LiveServer


def test_deep_health_reports_each_store(sqlite_url: str, tmp_path: Path) -> None:
    with LiveServer(sqlite_url, str(tmp_path / "blobs"), token="s3cret") as server:
        shallow = httpx.get(f"{server.url}/healthz")
        assert shallow.status_code == 200 and shallow.json()["status"] == "ok"
        for path in ("/healthz?deep=1", "/readyz"):
            deep = httpx.get(server.url + path)  # open, as probes expect, even with a token
            assert deep.status_code == 200, deep.text
            assert deep.json()["checks"] == {
                "metadata": {"status": "ok"},
                "blobs": {"status": "ok"},
            }


def test_a_blob_store_that_cannot_be_written_is_not_ready(
    sqlite_url: str, moto_endpoint: str
) -> None:
    options = {
        "key": "testing",
        "secret": "testing",
        "client_kwargs": {"endpoint_url": moto_endpoint, "region_name": "us-east-1"},
    }
    with LiveServer(
        sqlite_url, "s3://no-such-bucket-here/blobs", storage_options=options
    ) as server:
        assert httpx.get(f"{server.url}/healthz").status_code == 200  # alive: the database is
        ready = httpx.get(f"{server.url}/readyz")
        assert ready.status_code == 503
        body = ready.json()
        assert body["status"] == "error" and body["checks"]["metadata"] == {"status": "ok"}
        assert body["checks"]["blobs"]["status"] == "error" and body["checks"]["blobs"]["error"]
