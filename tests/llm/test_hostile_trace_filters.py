"""A trace filter too large for one query, or a time beyond 64 bits, is a 400 naming the limit
or the field (not a 503 that invites a retry, not a 500); the traces stored stay listed."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from opsloop import Client
from opsloop import InvalidInput
from opsloop.kernel.bounds import MAX_FILTER_CLAUSES
from tests.conftest import LiveServer


def test_oversized_trace_filters_are_invalid_input(tmp_path: Path, database_url: str) -> None:
    with LiveServer(database_url, str(tmp_path / "blobs")) as server:
        remote = Client(server_url=server.url)
        with remote.traces.tracer.span("answer", kind="chain", input="q") as span:
            span.update(output="a")
        remote.traces.flush()
        local = Client(database_url=database_url, blob_url=str(tmp_path / "blobs"))
        many = [f"s{i}>=0.5" for i in range(2000)]
        for client in (remote, local):
            with pytest.raises(InvalidInput, match=str(MAX_FILTER_CLAUSES)):
                client.traces.list(scores=many)
            with pytest.raises(InvalidInput, match=str(MAX_FILTER_CLAUSES)):
                client.traces.list(tags=[f"t{i}" for i in range(2000)])
            with pytest.raises(InvalidInput, match="until_ns"):
                client.traces.list(until_ns=2**70)
            assert len(client.traces.list(scores=many[:MAX_FILTER_CLAUSES]).items) == 0
            assert len(client.traces.list().items) == 1
        api = httpx.Client(base_url=server.url + "/api")
        for params in ({"scores": many}, {"until_ns": 2**70}, {"since_ns": -(2**70)}):
            response = api.get("/traces", params=params)
            assert response.status_code == 400, (params.keys(), response.text)
            assert response.json()["error"]["code"] == "INVALID_INPUT"
        local.close()
        remote.close()
