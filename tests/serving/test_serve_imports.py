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
