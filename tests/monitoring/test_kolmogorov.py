"""The drift tests that no longer import ``scipy.stats`` or ``scipy.spatial`` (issue 22,
everyday speed) give SciPy's own values, bit for bit: KS through ``kolmogorov`` (SciPy's
compiled exact kernel, loaded on its own), chi-square, Z and Jensen-Shannon through the
``scipy.special`` functions SciPy's would call. A drift report over numbers and categories
imports neither."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.spatial import distance

from opsloop.monitoring import kolmogorov
from opsloop.monitoring.profiles import profile_column
from opsloop.monitoring.stattests import STATTESTS
from opsloop.monitoring.stattests import Current
from opsloop.monitoring.stattests import _aligned
from opsloop.monitoring.stattests import _binned


def samples(kind: str, n1: int, n2: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    if kind == "continuous":
        return rng.normal(size=n1), rng.normal(rng.uniform(0, 0.3), size=n2)
    if kind == "integers":  # every current value among the reference's, or not
        return rng.integers(0, 8, n1).astype(float), rng.integers(0, 9, n2).astype(float)
    return np.round(rng.normal(size=n1), 1), np.round(rng.normal(0.05, size=n2), 1)  # ties


# the last three are above 10,000 rows on a side, where ks_2samp's p-value is asymptotic
SIZES = [(1, 7), (7, 1), (30, 31), (569, 10_000), (2_000, 300), (400, 400), (10_000, 9_999),
         (569, 10_012), (10_001, 50), (12_000, 12_000)]  # fmt: skip


@pytest.mark.parametrize("n1, n2", SIZES)
@pytest.mark.parametrize("kind", ["continuous", "integers", "ties"])
def test_ks_is_scipys_exact_p_value(kind: str, n1: int, n2: int) -> None:
    for seed in range(3):
        ref, cur = samples(kind, n1, n2, seed)
        profile = profile_column("x", pd.Series(ref), None)
        ours = STATTESTS["ks"].compute(profile, Current(values=cur), False)
        assert ours == float(stats.ks_2samp(ref, cur).pvalue)


def test_ks_of_identical_samples_and_of_disjoint_ones() -> None:
    ref = np.arange(50.0)
    profile = profile_column("x", pd.Series(ref), None)
    for cur in (ref[:25], ref + 1000.0, np.array([ref[0]])):
        ours = STATTESTS["ks"].compute(profile, Current(values=cur), False)
        assert ours == float(stats.ks_2samp(ref, cur).pvalue)


def test_the_kernel_is_scipys_own() -> None:
    kernel = kolmogorov._inside_method()
    assert kernel is not None
    from scipy.stats._stats_pythran import _compute_outer_prob_inside_method

    for args in [(569, 10_000, 1, 300), (30, 45, 15, 2), (10_000, 9_999, 1, 5_000_000)]:
        assert kernel(*args) == _compute_outer_prob_inside_method(*args)


def test_the_asymptotic_distribution_is_scipys_own_code() -> None:
    """Every branch of ``kolmogn``'s survival function (small and large n, exact, DMTW,
    Pomeranz, Pelz-Good, Smirnov, the tails) against ``kstwo.sf`` itself."""
    kolmogn = kolmogorov._kolmogn()
    assert kolmogn is not None
    xs = np.concatenate([[0.0, 1e-4, 0.003, 0.5, 0.75, 0.999, 1.0], np.linspace(0.001, 0.4, 60)])
    for n in (1, 2, 9, 60, 140, 141, 538, 5_000, 100_001):
        for x in xs:
            assert float(kolmogn(n, x, cdf=False)) == float(stats.kstwo.sf(x, n))


def test_the_copy_run_on_its_own_is_scipys(monkeypatch: pytest.MonkeyPatch) -> None:
    """With ``scipy.stats`` out of ``sys.modules``, ``_ksstats`` runs as a module of its own:
    its survival function, and its density (whose derivative is imported when first called),
    are SciPy's."""
    monkeypatch.delitem(sys.modules, kolmogorov._KSSTATS_MODULE)
    kolmogorov._kolmogn.cache_clear()
    try:
        own = kolmogorov._kolmogn()
        assert own is not None and own.__module__ == kolmogorov._OWN_NAME
        for n, x in ((60, 0.1), (538, 0.05), (5_000, 0.02)):
            assert float(own(n, x, cdf=False)) == float(stats.kstwo.sf(x, n))
            assert float(own.__globals__["kolmognp"](n, x)) == float(stats.kstwo.pdf(x, n))
    finally:
        kolmogorov._kolmogn.cache_clear()


def test_equal_sizes_are_left_to_scipy() -> None:
    assert kolmogorov.exact_p_value(np.array([0.1, -0.2]), 10, 10) is None


def categorical(rng: np.random.Generator, n: int, p: list[float]) -> pd.Series:
    return pd.Series(rng.choice(["a", "b", "c", "d"][: len(p)], size=n, p=p))


@pytest.mark.parametrize("seed", range(5))
def test_chisquare_z_and_jensenshannon_are_scipys(seed: int) -> None:
    rng = np.random.default_rng(seed)
    for p_ref, p_cur in [([0.5, 0.3, 0.2], [0.4, 0.4, 0.2]), ([0.7, 0.3], [0.6, 0.4]),
                         ([0.25] * 4, [0.25] * 4)]:  # fmt: skip
        ref_s = categorical(rng, 800, p_ref)
        cur_s = categorical(rng, int(rng.integers(50, 5000)), p_cur)
        ref = profile_column("c", ref_s, "categorical")
        cur = Current(counts=cur_s.value_counts().to_dict())
        keys = sorted({*ref_s, *cur_s})
        ref_counts, cur_counts = ref.distinct_counts() or {}, cur.distinct_counts()
        r, c = _aligned(ref_counts, cur_counts)  # the statistic as stattests computes it

        expected = r * (c.sum() / r.sum())
        statistic = float((((c - expected) ** 2) / expected).sum())
        chi = float(stats.chi2.sf(statistic, len(keys) - 1))
        assert STATTESTS["chisquare"].compute(ref, cur, True) == chi

        js = STATTESTS["jensenshannon"].compute(ref, cur, True)
        assert js == float(distance.jensenshannon(r / r.sum(), c / c.sum()))

        if len(keys) == 2:  # the statistic as stattests._z computes it, then SciPy's cdf
            n1, n2 = len(ref_s), len(cur_s)
            p1, p2 = 1 - ref_counts[keys[0]] / n1, 1 - cur_counts[keys[0]] / n2
            pooled = (p1 * n1 + p2 * n2) / (n1 + n2)
            z = (p1 - p2) / np.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
            theirs = float(2 * (1 - stats.norm.cdf(abs(z))))
            assert STATTESTS["z"].compute(ref, cur, True) == theirs


def test_zero_statistic_and_binned_numbers() -> None:
    ref = profile_column("c", pd.Series(["a", "b"] * 50), "categorical")
    same = Current(counts={"a": 50, "b": 50})
    assert STATTESTS["chisquare"].compute(ref, same, True) == float(stats.chi2.sf(0.0, 1))
    assert STATTESTS["z"].compute(ref, same, True) == float(2 * (1 - stats.norm.cdf(0.0)))
    rng = np.random.default_rng(3)
    numbers = profile_column("x", pd.Series(rng.normal(size=3000)), None)
    current = Current(values=rng.normal(0.2, size=700))
    r, c = _binned(numbers, current, False)
    assert STATTESTS["jensenshannon"].compute(numbers, current, False) == float(
        distance.jensenshannon(r, c)
    )


def test_a_drift_report_imports_neither_scipy_stats_nor_spatial() -> None:
    source = (
        "import sys\n"
        "import numpy as np, pandas as pd\n"
        "from opsloop.monitoring.drift import drift\n"
        "from opsloop.monitoring.profiles import profile_frame\n"
        "rng = np.random.default_rng(0)\n"
        "def frame(n, shift):\n"
        "    return pd.DataFrame({'x': rng.normal(shift, size=n), 'k': rng.integers(0, 9, n),\n"
        "                         'c': rng.choice(['a', 'b', 'c'], n),\n"
        "                         'b': rng.choice([0, 1], n)})\n"
        "small, large = profile_frame(frame(500, 0)), profile_frame(frame(5000, 0))\n"
        "drift(small, frame(2000, 0.3)); drift(large, frame(2000, 0.3))\n"
        "drift(small, frame(10_012, 0.3))\n"  # above 10,000 rows: KS's asymptotic p-value
        "print(sorted(m for m in ('scipy.stats', 'scipy.spatial') if m in sys.modules))\n"
        "from scipy import stats\n"  # the kernel loaded on its own first: SciPy's still loads
        "ref, cur = rng.normal(size=300), rng.normal(0.1, size=700)\n"
        "from opsloop.monitoring.profiles import profile_column\n"
        "from opsloop.monitoring.stattests import STATTESTS, Current\n"
        "ours = STATTESTS['ks'].compute(profile_column('x', pd.Series(ref)), Current(cur), False)\n"
        "assert ours == float(stats.ks_2samp(ref, cur).pvalue)\n"
    )
    done = subprocess.run([sys.executable, "-c", source], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
