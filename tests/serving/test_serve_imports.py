"""``opsloop serve`` imports scipy.special (where scikit-learn is installed) before the server's
modules so that skops' scan of sys.modules (at the first scikit-learn model load) is short. The
scan returns the first module holding each object, so the order could change what it finds: this
checks that skops' trusted type names are the same whichever comes first."""

from __future__ import annotations

import json
import subprocess
import sys

NAMES = """
import json, sys
if sys.argv[1] == "early":
    import scipy.special  # as opsloop serve does, first
import uvicorn  # the server's modules, as serve's app imports them
import opsloop.app.serving, opsloop.client, opsloop.serving.inference_api
from opsloop.registry.sklearn_imports import skops_io
skops_io()
import skops.io._trusted_types as trusted
print(json.dumps({k: v for k, v in vars(trusted).items()
                  if k.isupper() and isinstance(v, list) and all(isinstance(x, str) for x in v)}))
"""


def _trusted_names(order: str) -> dict[str, list[str]]:
    done = subprocess.run(
        [sys.executable, "-c", NAMES, order], capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout.splitlines()[-1])  # type: ignore[no-any-return]


def test_skops_finds_the_same_type_names_with_scipy_imported_first() -> None:
    late, early = _trusted_names("late"), _trusted_names("early")
    assert len(late["SCIPY_UFUNC_TYPE_NAMES"]) > 100  # the ufuncs the scan resolves
    assert all(n.startswith("scipy.") for n in late["SCIPY_UFUNC_TYPE_NAMES"])
    assert early == late


SCAN = """
import json, sys, types
import numpy as np

class Holder(types.ModuleType):  # a module of a subclass: asked with getattr
    pass

lazy = types.ModuleType("a_lazy_shim")  # a module-level __getattr__ that imports and hands over
def _lazy(name):
    import scipy.special
    if name == "ndtr":
        return scipy.special.ndtr
    raise AttributeError(name)
lazy.__getattr__ = _lazy
held = Holder("a_module_subclass")
class NotAModule:  # sys.modules may hold any object
    pass
odd = NotAModule()
# all three ahead of SciPy's modules in sys.modules, as a user's own modules may be
sys.modules.update({"a_lazy_shim": lazy, "a_module_subclass": held, "not_a_module": odd})
import scipy.special
held.erf = scipy.special.erf
odd.expit = scipy.special.expit

from opsloop.registry.sklearn_imports import _first_module_holding, skops_io
skops = skops_io()
import skops.io._utils as utils
import skops.io._trusted_types as trusted
assert utils.whichmodule is not _first_module_holding  # skops's own again after the import
ufuncs = [getattr(scipy.special, n) for n in dir(scipy.special)]
ufuncs = [f for f in ufuncs if isinstance(f, np.ufunc)]
ours = [_first_module_holding(f, f.__name__) for f in ufuncs]
theirs = [utils.whichmodule(f, f.__name__) for f in ufuncs]
again = utils.get_public_type_names(module=scipy.special, oftype=np.ufunc)
print(json.dumps({"ours": ours, "theirs": theirs, "listed": trusted.SCIPY_UFUNC_TYPE_NAMES,
                  "again": again, "erf": _first_module_holding(scipy.special.erf, "erf"),
                  "ndtr": _first_module_holding(scipy.special.ndtr, "ndtr"),
                  "expit": _first_module_holding(scipy.special.expit, "expit"),
                  "class": _first_module_holding(np.ndarray, "ndarray")}))
"""


def test_the_faster_ufunc_scan_names_the_modules_skops_names() -> None:
    """While skops is imported its ``whichmodule`` (a ``getattr`` on every loaded module until
    one holds the ufunc) is stood in for by one that reads plain modules' namespaces: the same
    module for every SciPy ufunc, with modules ahead of SciPy's that skops must still ask with
    ``getattr`` (a ``__getattr__`` module, a module subclass, a non-module in sys.modules)."""
    done = subprocess.run([sys.executable, "-c", SCAN], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout.splitlines()[-1])
    assert len(found["ours"]) > 100
    assert found["ours"] == found["theirs"]
    assert found["listed"] == found["again"]  # the trusted names skops built meanwhile
    assert (found["ndtr"], found["erf"], found["expit"]) == (
        "a_lazy_shim", "a_module_subclass", "not_a_module",
    )  # fmt: skip
    assert found["class"] == "numpy"
