"""The standard normal distribution function as SciPy's ``special.ndtr`` computes it, without
importing ``scipy.special``.

The Z test of a binary column (every classifier's prediction column, in every monitor check)
needs one value of the normal distribution function. Importing ``scipy.special`` for it cost a
check more CPU than all of its 31 statistical tests (its array-API layer imports NumPy's
``f2py`` and ``testing``). SciPy computes ``ndtr`` with Cephes' ``erf`` and ``erfc`` (in its
``xsf`` library): the same rational approximations, evaluated here in the same order on the same
doubles, with the C library's ``exp`` (Python's ``math.exp`` is that function), so the values
are SciPy's to the bit; ``tests/monitoring/test_normal.py`` compares them over 1.6 million
points, tails and infinities included.
"""

from __future__ import annotations

import math

__all__ = ["ndtr"]

# Cephes ndtr.c (Stephen L. Moshier, 1984-1992), as SciPy's xsf/cephes/ndtr.h keeps it
_P = (2.46196981473530512524e-10, 5.64189564831068821977e-1, 7.46321056442269912687e0,
      4.86371970985681366614e1, 1.96520832956077098242e2, 5.26445194995477358631e2,
      9.34528527171957607540e2, 1.02755188689515710272e3, 5.57535335369399327526e2)  # fmt: skip
_Q = (1.32281951154744992508e1, 8.67072140885989742329e1, 3.54937778887819891062e2,
      9.75708501743205489753e2, 1.82390916687909736289e3, 2.24633760818710981792e3,
      1.65666309194161350182e3, 5.57535340817727675546e2)  # fmt: skip
_R = (5.64189583547755073984e-1, 1.27536670759978104416e0, 5.01905042251180477414e0,
      6.16021097993053585195e0, 7.40974269950448939160e0, 2.97886665372100240670e0)  # fmt: skip
_S = (2.26052863220117276590e0, 9.39603524938001434673e0, 1.20489539808096656605e1,
      1.70814450747565897222e1, 9.60896809063285878198e0, 3.36907645100081516050e0)  # fmt: skip
_T = (9.60497373987051638749e0, 9.00260197203842689217e1, 2.23200534594684319226e3,
      7.00332514112805075473e3, 5.55923013010394962768e4)  # fmt: skip
_U = (3.35617141647503099647e1, 5.21357949780152679795e2, 4.59432382970980127987e3,
      2.26290000613890934246e4, 4.92673942608635921086e4)  # fmt: skip
_MAXLOG = 7.09782712893383996843e2  # log(DBL_MAX)
_SQRT1_2 = 0.70710678118654752440


def _polevl(x: float, coefficients: tuple[float, ...]) -> float:
    """Horner's rule, from the highest coefficient (Cephes' ``polevl``)."""
    total = coefficients[0]
    for c in coefficients[1:]:
        total = total * x + c
    return total


def _p1evl(x: float, coefficients: tuple[float, ...]) -> float:
    """``_polevl`` with a leading coefficient of 1 left out of the table (Cephes' ``p1evl``)."""
    total = x + coefficients[0]
    for c in coefficients[1:]:
        total = total * x + c
    return total


def _erfc(a: float) -> float:
    x = -a if a < 0.0 else a
    if x < 1.0:
        return 1.0 - _erf(a)
    z = -a * a
    if z < -_MAXLOG:
        return 2.0 if a < 0 else 0.0  # underflow
    z = math.exp(z)
    p, q = (_P, _Q) if x < 8.0 else (_R, _S)
    y = (z * _polevl(x, p)) / _p1evl(x, q)
    if a < 0:
        y = 2.0 - y
    if y != 0.0:
        return y
    return 2.0 if a < 0 else 0.0  # underflow


def _erf(x: float) -> float:
    if x < 0.0:
        return -_erf(-x)
    if x > 1.0:
        return 1.0 - _erfc(x)
    z = x * x
    return x * _polevl(z, _T) / _p1evl(z, _U)


def ndtr(a: float) -> float:
    """The probability that a standard normal variable is at most ``a``."""
    if math.isnan(a):
        return math.nan
    x = a * _SQRT1_2
    z = abs(x)
    if z < 1.0:
        return 0.5 + 0.5 * _erf(x)
    y = 0.5 * _erfc(z)
    return 1.0 - y if x > 0 else y
