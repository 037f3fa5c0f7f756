"""Batch inference over a data version and over a path, in chunks, into a new data version
linked to the model version and the input."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from opsloop.errors import InvalidInput
from opsloop.serving.batch import default_chunk_rows
from tests.serving.conftest import COLUMNS
from tests.serving.conftest import register_two


def test_batch_over_a_data_version_and_a_path(
    client: Any, weak_model: Any, strong_model: Any, cancer: Any, tmp_path: Path
) -> None:
    register_two(client, weak_model, strong_model, cancer)
    table = tmp_path / "patients.csv"
    cancer[COLUMNS].to_csv(table, index=False)
    client.data.add(table, "patients")
    seen: list[tuple[int, int]] = []
    result = client.deployments.predict_batch(
        "cancer-clf@2", "patients@1", "patients-scored", chunk_rows=100, proba=True,
        on_chunk=lambda done, total: seen.append((done, total)),
    )  # fmt: skip
    assert (result.output, result.rows, result.chunks) == ("patients-scored@1", len(cancer), 6)
    assert seen[-1] == (len(cancer), len(cancer))
    scored = client.data.get(result.output).to_pandas()
    expected = client.models.load("cancer-clf@2").predict(cancer[COLUMNS])
    assert scored["prediction"].tolist() == list(expected)
    assert {"proba_0", "proba_1", *COLUMNS} <= set(scored.columns)
    parquet = tmp_path / "more.parquet"
    cancer[COLUMNS].head(10).to_parquet(parquet)
    again = client.deployments.predict_batch("cancer-clf@1", parquet, "patients-scored")
    assert (again.output, again.rows) == ("patients-scored@2", 10)
    with pytest.raises(InvalidInput, match="neither a data version"):
        client.deployments.predict_batch("cancer-clf@1", tmp_path / "nope.csv", "x")
    bad = tmp_path / "bad.csv"
    cancer[["mean radius"]].to_csv(bad, index=False)
    with pytest.raises(InvalidInput, match="missing"):
        client.deployments.predict_batch("cancer-clf@1", bad, "x")


def test_batch_lineage_and_cli(
    weak_model: Any, strong_model: Any, cancer: Any, tmp_path: Path
) -> None:
    import opsloop
    from opsloop.schema import lineage_catalog

    client = opsloop.Client()
    register_two(client, weak_model, strong_model, cancer)
    table = tmp_path / "patients.parquet"
    cancer[COLUMNS].to_parquet(table)
    client.data.add(table, "patients")
    cli = str(Path(sys.executable).with_name("opsloop"))
    done = subprocess.run(
        [cli, "predict", "cancer-clf@2", "patients@1", "--output", "scored", "--chunk-rows", "200"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert f"scored@1: {len(cancer)} rows scored by cancer-clf@2 in 3 chunk(s)" in done.stdout
    store = client.deployments._backend.store
    with store.read() as session:
        upstream = {
            (n["type"], n["relation"])
            for n in lineage_catalog().lineage(session, "data", "scored@1")["upstream"]
        }
    assert upstream == {("model_version", "predicted"), ("dataset_version", "scored")}
    client.close()


def test_batch_on_a_local_ray_instance(
    sqlite_url: str, tmp_path: Path, weak_model: Any, strong_model: Any, cancer: Any,
    local_ray: Any,
) -> None:  # fmt: skip
    import opsloop

    client = opsloop.Client(database_url=sqlite_url, blob_url=str(tmp_path / "blobs"))
    register_two(client, weak_model, strong_model, cancer)
    table = tmp_path / "patients.parquet"
    cancer[COLUMNS].to_parquet(table)
    big = tmp_path / "patients-x8.parquet"
    pd.concat([cancer[COLUMNS]] * 8, ignore_index=True).to_parquet(big)  # 4,552 rows
    result = client.deployments.predict_batch(
        "cancer-clf@2", table, "scored-on-ray", chunk_rows=100, executor="ray"
    )
    split = client.deployments.predict_batch("cancer-clf@2", big, "x8", executor="ray")
    assert (split.rows, split.chunks) == (8 * len(cancer), 4)  # two per CPU, by default
    bad = tmp_path / "bad.parquet"
    cancer[["mean radius"]].to_parquet(bad)
    with pytest.raises(InvalidInput, match="missing"):  # a worker's error, as the local one
        client.deployments.predict_batch("cancer-clf@2", bad, "x", executor="ray")
    assert (result.rows, result.chunks) == (len(cancer), 6)
    scored = client.data.get(result.output).to_pandas()
    expected = client.models.load("cancer-clf@2").predict(cancer[COLUMNS])
    assert scored["prediction"].tolist() == list(expected)  # same rows, same order
    with pytest.raises(InvalidInput, match="choose local or ray"):
        client.deployments.predict_batch("cancer-clf@2", table, "x", executor="spark")
    client.close()


def test_default_chunks_split_a_table_across_the_cluster() -> None:
    """Two chunks per CPU, never below 1,000 rows (scheduling costs more) nor above 50,000."""
    assert default_chunk_rows(50_000, 8) == 3_125  # 16 tasks, not one
    assert default_chunk_rows(50_001, 2) == 12_501
    assert default_chunk_rows(500, 16) == 1_000
    assert default_chunk_rows(10_000_000, 4) == 50_000
    assert default_chunk_rows(0, 0) == 1_000
