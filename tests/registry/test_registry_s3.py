"""The registry on a shared setup's storage: PostgreSQL metadata and an S3-compatible bucket
(moto_server). A model registered on one machine is loaded and promoted on another."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from .conftest import policy

pytestmark = [pytest.mark.s3, pytest.mark.postgres]


def _client(home: Path, database_url: str, s3: tuple[str, dict[str, object]]) -> Any:
    from opsloop import Client
    from opsloop.config import load_settings

    url, options = s3
    settings = load_settings(
        home=str(home), database_url=database_url, blob_url=url, storage_options=options
    )
    return Client(settings=settings)


def test_register_on_one_machine_load_and_promote_on_another(
    tmp_path: Path,
    pg_url: str,
    s3_blob_url: tuple[str, dict[str, object]],
    strong_model: Any,
    weak_model: Any,
    cancer: pd.DataFrame,
    cancer_csv: Path,
) -> None:
    laptop = _client(tmp_path / "laptop", pg_url, s3_blob_url)
    laptop.data.add(cancer_csv, name="cancer", push=True)
    example = cancer.drop(columns=["target"]).head()
    laptop.models.register("clf", strong_model, input_example=example)
    laptop.models.register("clf", weak_model, input_example=example)

    server = _client(tmp_path / "server", pg_url, s3_blob_url)  # a fresh cache: bytes from S3
    loaded = server.models.load("clf@1")
    features = cancer.drop(columns=["target"])
    np.testing.assert_array_equal(loaded.predict(features), strong_model.predict(features))
    assert server.models.promote("clf@1", "champion", policy=policy()).moved
    assert not server.models.promote("clf@2", "champion", policy=policy()).moved
    assert laptop.models.version("clf@champion").number == 1
    laptop.close()
    server.close()
