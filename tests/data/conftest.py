"""Fixtures for data versions: small real tables and folders on disk."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from sklearn.datasets import load_iris


@pytest.fixture
def iris_csv(tmp_path: Path) -> Path:
    """scikit-learn's bundled iris table as a CSV file."""
    frame = load_iris(as_frame=True).frame
    path = tmp_path / "iris.csv"
    frame.to_csv(path, index=False)
    return path


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A folder of small files, nested two deep."""
    root = tmp_path / "images"
    (root / "cats").mkdir(parents=True)
    (root / "dogs").mkdir()
    for i in range(5):
        (root / "cats" / f"{i}.txt").write_text(f"cat {i}")
        (root / "dogs" / f"{i}.txt").write_text(f"dog {i}")
    (root / "README").write_text("pets")
    return root


def frame_of(path: Path) -> pd.DataFrame:
    return pd.read_csv(path)
