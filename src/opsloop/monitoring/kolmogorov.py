"""The exact two-sample Kolmogorov-Smirnov p-value, as SciPy's ``ks_2samp`` gives it, without
importing ``scipy.stats``.

Importing ``scipy.stats`` was a third of a monitor check's CPU (it parses the docstrings of some
600 functions as it loads). ``ks_2samp``'s exact two-sided p-value for samples of different
sizes comes from one compiled function, ``_compute_outer_prob_inside_method`` (Hodges' inside
method), in SciPy's Pythran module ``scipy.stats._stats_pythran``, which needs nothing but
NumPy. This module loads that extension from its file, without its package, and calls it with
the statistic ``ks_2samp`` computes. (A port to Python gave the same p-values but took 27-163 ms
a column against 0.5-6 ms compiled: more than the import it saves; see bench/README.md.)

``exact_p_value`` answers None wherever ``ks_2samp`` takes another road (equal sizes, a
p-value it rejects and recomputes asymptotically) or the compiled function is not where this
SciPy is expected to keep it; the caller then asks ``scipy.stats`` itself, so the p-value is the
same in every case. ``tests/monitoring/test_kolmogorov.py`` compares the two.
"""

from __future__ import annotations

import functools
import importlib.machinery
import importlib.util
import math
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

__all__ = ["exact_p_value"]

_KERNEL_MODULE = "scipy.stats._stats_pythran"


def exact_p_value(gap: np.ndarray, n1: int, n2: int) -> float | None:
    """``ks_2samp(a, b).pvalue`` in its exact mode, from ``gap``: F_a - F_b at each distinct
    value of either sample (``n1``, ``n2``: the samples' sizes); None where SciPy must say."""
    if n1 == n2:
        return None  # ks_2samp's other exact method (_compute_prob_outside_square)
    inside = _inside_method()
    if inside is None:
        return None
    # the statistic exactly as ks_2samp takes it: the larger of the two one-sided gaps
    largest = gap[np.argmax(gap)]
    smallest = np.clip(-gap[np.argmin(gap)], 0, 1)
    d = smallest if smallest > largest else largest
    g = math.gcd(n1, n2)
    h = int(np.round(d * ((n1 // g) * n2)))
    if h == 0:
        return 1.0
    prob = inside(n1, n2, g, h)
    if not 0 <= prob <= 1:
        return None  # ks_2samp warns and falls back to the asymptotic p-value
    return float(np.clip(prob, 0, 1))


@functools.cache
def _inside_method() -> Callable[[int, int, int, int], float] | None:
    """SciPy's compiled ``_compute_outer_prob_inside_method``: from ``sys.modules`` when
    ``scipy.stats`` is loaded, else from the extension's file, loaded on its own (not put into
    ``sys.modules``: a later ``import scipy.stats`` loads it there as usual, the same code)."""
    module = sys.modules.get(_KERNEL_MODULE)
    if module is None:
        try:
            scipy = importlib.util.find_spec("scipy")
            folders = scipy.submodule_search_locations if scipy is not None else None
            if not folders:
                return None
            stats = Path(next(iter(folders))) / "stats"
            found = [
                stats / f"_stats_pythran{suffix}"
                for suffix in importlib.machinery.EXTENSION_SUFFIXES
                if (stats / f"_stats_pythran{suffix}").is_file()
            ]
            if not found:
                return None
            loader = importlib.machinery.ExtensionFileLoader(_KERNEL_MODULE, str(found[0]))
            spec = importlib.util.spec_from_file_location(_KERNEL_MODULE, found[0], loader=loader)
            if spec is None:
                return None
            module = importlib.util.module_from_spec(spec)
            loader.exec_module(module)
        except (ImportError, OSError):
            return None
    kernel = getattr(module, "_compute_outer_prob_inside_method", None)
    return kernel if callable(kernel) else None
