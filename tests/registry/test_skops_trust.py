"""A scikit-learn model file that uses a type skops does not trust by default is refused with
the types named, and loads when the caller trusts them by name."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from opsloop.errors import PermissionDenied
from opsloop.registry.flavors import FLAVORS


def test_a_model_with_an_untrusted_type_is_refused_until_trusted(tmp_path: Path) -> None:
    X, y = np.array([[1.0], [2.0], [3.0], [4.0]]), [0, 0, 1, 1]
    model = make_pipeline(FunctionTransformer(np.vectorize(math.fabs)), LogisticRegression())
    path = tmp_path / "model.skops"
    FLAVORS["sklearn"].save(model.fit(X, y), path)
    with pytest.raises(PermissionDenied, match=r"not trusted: \['math\.fabs'\]"):
        FLAVORS["sklearn"].load(path, [])
    loaded = FLAVORS["sklearn"].load(path, ["math.fabs"])
    assert loaded.predict(X).tolist() == [0, 0, 1, 1]
