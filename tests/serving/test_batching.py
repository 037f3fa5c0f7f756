"""Micro-batching: concurrent requests share model calls, get exactly their own answers, and a
bad request fails alone."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

import opsloop
from opsloop.errors import InvalidInput
from opsloop.serving.batching import MicroBatcher
from tests.serving.conftest import COLUMNS


def test_concurrent_requests_share_batches_and_a_bad_one_fails_alone(
    sqlite_url: str, tmp_path: Path, strong_model: Any, cancer: Any
) -> None:
    client = opsloop.Client(database_url=sqlite_url, blob_url=str(tmp_path / "blobs"))
    client.models.register("clf", strong_model, input_example=cancer[COLUMNS].head())
    model = client.models.load("clf@1")
    batcher = MicroBatcher(model, max_batch=64, max_wait=0.05)
    records = cancer[COLUMNS].head(40).to_dict(orient="records")
    expected = model.predict(records).tolist()
    results: dict[int, Any] = {}
    barrier = threading.Barrier(41)

    def call(i: int) -> None:
        barrier.wait()
        rows = [{"mean radius": "big"}] if i == 40 else [records[i]]
        try:
            results[i] = batcher.predict(rows, 1)
        except InvalidInput as exc:
            results[i] = exc

    threads = [threading.Thread(target=call, args=(i,)) for i in range(41)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert isinstance(results[40], InvalidInput) and "mean texture" in results[40].message
    assert [results[i][0].tolist()[0] for i in range(40)] == expected
    assert max(batch for _, batch in (results[i] for i in range(40))) > 1  # calls were merged
    assert batcher.batches < 40
    with pytest.raises(InvalidInput):
        batcher.predict([{"mean radius": 1.0}], 1)  # alone: checked on the caller's thread
    client.close()
