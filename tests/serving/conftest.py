"""Two real classifiers on scikit-learn's breast-cancer table, registered as versions 1 and 2
of ``cancer-clf``: a weak one (C=0.001) and a strong one (C=10)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.registry.conftest import COLUMNS
from tests.registry.conftest import cancer  # noqa: F401
from tests.registry.conftest import strong_model  # noqa: F401
from tests.registry.conftest import train
from tests.registry.conftest import weak_model  # noqa: F401

OTHER_COLUMNS = ["mean radius", "mean area"]  # "mean area" is not in the live traffic


@pytest.fixture(scope="session")
def other_columns_model(cancer: Any) -> Any:  # noqa: F811 - a fixture, reused by name
    """A model that wants other columns: a candidate that fails on the live traffic."""
    from sklearn.datasets import load_breast_cancer

    frame = load_breast_cancer(as_frame=True).frame
    return train(frame[[*OTHER_COLUMNS, "target"]], 1.0)


def register_two(client: Any, weak: Any, strong: Any, cancer: Any) -> None:  # noqa: F811
    example = cancer[COLUMNS].head()
    client.models.register("cancer-clf", weak, input_example=example)
    client.models.register("cancer-clf", strong, input_example=example)


def rows(cancer: Any, n: int = 1, start: int = 0) -> list[dict[str, Any]]:  # noqa: F811
    return cancer[COLUMNS].iloc[start : start + n].to_dict(orient="records")
