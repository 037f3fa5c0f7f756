"""``monitoring.normal.ndtr`` is SciPy's ``special.ndtr``, bit for bit (the Z test's p-value,
computed without importing ``scipy.special``: issue 22, everyday speed)."""

from __future__ import annotations

import math

import numpy as np
from scipy import special

from opsloop.monitoring.normal import ndtr


def test_ndtr_is_scipys_to_the_bit() -> None:
    rng = np.random.default_rng(0)
    points = np.concatenate([
        rng.normal(0, 3, 100_000),  # the body
        rng.uniform(-40, 40, 100_000),  # both tails, past erfc's underflow (|x| > 37.5)
        rng.uniform(-1.5, 1.5, 100_000),  # around erf / erfc's switch at |x| / sqrt(2) = 1
        np.linspace(-12, 12, 48_001),
        [0.0, -0.0, math.sqrt(2), -math.sqrt(2), 8 * math.sqrt(2), 5e-324, 1e-300, 37.5, 38.0,
         -37.5, -38.0, math.inf, -math.inf],
    ])  # fmt: skip
    theirs = special.ndtr(points)
    ours = np.array([ndtr(float(x)) for x in points])
    assert np.array_equal(ours, theirs), points[ours != theirs][:10]
    assert math.isnan(ndtr(math.nan))
