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

Above 10,000 rows on either side ``ks_2samp`` answers ``kstwo.sf(d, round(n*m/(n+m)))``, and a
monitor's window is often that large. ``kstwo``'s survival function is ``kolmogn`` of SciPy's
pure-Python module ``scipy.stats._ksstats`` (Simard and L'Ecuyer's choice among exact and
asymptotic formulas), which needs NumPy and ``scipy.special`` only, but importing it the usual
way imports ``scipy.stats`` first. :func:`asymptotic_p_value` runs that file's own code as a
module of its own, whose one import from ``scipy.stats`` (a numerical derivative, used only by
the density) waits until it is called; None, and the caller asks ``scipy.stats``, when the file
or the function is not there.
"""

from __future__ import annotations

import builtins
import functools
import importlib.machinery
import importlib.util
import math
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

__all__ = ["asymptotic_p_value", "exact_p_value"]

_KERNEL_MODULE = "scipy.stats._stats_pythran"
_KSSTATS_MODULE = "scipy.stats._ksstats"
_DERIVATIVE_MODULE = "scipy.stats._finite_differences"
_OWN_NAME = "opsloop.monitoring._scipy_ksstats"  # never put into sys.modules


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


def asymptotic_p_value(d: float, n1: int, n2: int) -> float | None:
    """``ks_2samp(a, b).pvalue`` in its asymptotic mode (``kstwo.sf``) for the statistic ``d``
    of samples of sizes ``n1`` and ``n2``; None where SciPy must say."""
    kolmogn = _kolmogn()
    if kolmogn is None:
        return None
    return float(kolmogn(np.round(n1 * n2 / (n1 + n2)), d, cdf=False))


@functools.cache
def _kolmogn() -> Callable[..., Any] | None:
    """``kolmogn`` of SciPy's ``_ksstats`` (what ``kstwo.sf`` calls): from ``sys.modules`` when
    ``scipy.stats`` is loaded, else that file's code run as a module of its own."""
    module = sys.modules.get(_KSSTATS_MODULE)
    if module is None:
        path = _stats_folder()
        source = path / "_ksstats.py" if path is not None else None
        if source is None or not source.is_file():
            return None
        # loaded by the standard source loader (so from SciPy's own cached bytecode, never
        # compiled again), under a name of its own, with its imports answered as below
        spec = importlib.util.spec_from_file_location(_OWN_NAME, source)
        if spec is None or spec.loader is None:
            return None
        module = importlib.util.module_from_spec(spec)
        module.__dict__["__builtins__"] = {**vars(builtins), "__import__": _import_without_stats}
        try:
            spec.loader.exec_module(module)
        except (ImportError, OSError, SyntaxError):
            return None
    kolmogn = getattr(module, "kolmogn", None)
    return kolmogn if callable(kolmogn) else None


def _import_without_stats(name: str, *args: Any, **kwargs: Any) -> Any:
    """``__import__`` for ``_ksstats``'s code. Its import of the numerical derivative (used by
    the density only, never by the survival function) gets SciPy's own, imported from
    ``scipy.stats`` when it is first called; ``scipy`` comes with ``scipy.special`` imported
    when the code first calls one of its functions (the survival function needs one only for a
    large statistic, and importing it clones NumPy's namespace for SciPy's array-API layer: a
    tenth of a monitor check)."""
    if name == _DERIVATIVE_MODULE:
        on_call = ModuleType(_DERIVATIVE_MODULE)

        def _derivative(*args: Any, **kwargs: Any) -> Any:
            return importlib.import_module(_DERIVATIVE_MODULE)._derivative(*args, **kwargs)

        on_call._derivative = _derivative  # type: ignore[attr-defined]
        return on_call
    if name.startswith("scipy.special"):
        return _OnFirstUse("scipy")  # ``import scipy.special[._ufuncs] [as x]`` binds from it
    return builtins.__import__(name, *args, **kwargs)


class _OnFirstUse:
    """A module as ``_ksstats`` names it, imported when one of its functions is first looked
    up: ``scipy``, ``scipy.special`` and ``scipy.special._ufuncs`` are this, one level each."""

    _LAZY = {"scipy": "special", "scipy.special": "_ufuncs"}

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attribute: str) -> Any:
        if self._LAZY.get(self._name) == attribute:
            return _OnFirstUse(f"{self._name}.{attribute}")
        return getattr(importlib.import_module(self._name), attribute)


def _stats_folder() -> Path | None:
    """The folder of the installed ``scipy.stats`` package, found without importing it."""
    scipy = importlib.util.find_spec("scipy")
    folders = scipy.submodule_search_locations if scipy is not None else None
    return Path(next(iter(folders))) / "stats" if folders else None


@functools.cache
def _inside_method() -> Callable[[int, int, int, int], float] | None:
    """SciPy's compiled ``_compute_outer_prob_inside_method``: from ``sys.modules`` when
    ``scipy.stats`` is loaded, else from the extension's file, loaded on its own (not put into
    ``sys.modules``: a later ``import scipy.stats`` loads it there as usual, the same code)."""
    module = sys.modules.get(_KERNEL_MODULE)
    if module is None:
        try:
            stats = _stats_folder()
            if stats is None:
                return None
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
