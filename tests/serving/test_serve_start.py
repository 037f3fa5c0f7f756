"""What ``opsloop serve`` does to start faster, checked to change nothing else: SciPy's
docstrings as written (no array-API table rendered into each at import), and the cyclic
collector paused until the app is ready. Fresh interpreters, so that no other test has
imported SciPy or the app first."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

SCIPY = """
import json, sys
from scipy._lib import _array_api
parse = _array_api.FunctionDoc
if sys.argv[1] == "as-written":
    from opsloop.registry.sklearn_imports import scipy_docs_as_written
    with scipy_docs_as_written():
        import scipy.special, scipy.stats
else:
    import scipy.special, scipy.stats
table = _array_api.xp_capabilities_table
name = lambda f: f"{getattr(f, '__module__', None)}.{f.__name__}"
print(json.dumps({
    "restored": _array_api.FunctionDoc is parse,
    "noted": sum("Array API Standard Support" in (f.__doc__ or "") for f in table),
    "summaries": {  # a ufunc's rendered doc starts with SciPy's signature, not NumPy's
        name(f): (f.__doc__ or "").lstrip().split("\\n")[0] for f in table if hasattr(f, "__code__")
    },
    "capabilities": {name(f): repr(c) for f, c in table.items()},
    "ks": scipy.stats.ks_2samp([1.0, 2.5, 3.0, 7.0], [2.0, 3.5, 4.0, 5.0, 9.0]).pvalue,
    "ndtr": float(scipy.special.ndtr(0.3)),
}))
"""


def _scipy(mode: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", SCIPY, mode], capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout.splitlines()[-1])  # type: ignore[no-any-return]


def test_scipy_imported_with_its_docstrings_as_written_differs_only_in_the_table() -> None:
    rendered, written = _scipy("rendered"), _scipy("as-written")
    assert written["restored"]
    assert rendered["noted"] > 400 and written["noted"] == 0
    assert written["capabilities"] == rendered["capabilities"]
    # the same first line, where there is a docstring (the rendered one of a function without
    # one is the table alone)
    assert written["summaries"].keys() == rendered["summaries"].keys()
    assert {k: rendered["summaries"][k] for k, v in written["summaries"].items() if v} == {
        k: v for k, v in written["summaries"].items() if v
    }
    assert (written["ks"], written["ndtr"]) == (rendered["ks"], rendered["ndtr"])


START = """
import gc
from fastapi.testclient import TestClient
from opsloop.app.serving import serving_app_from_env

gc.disable()  # as `opsloop serve` (one worker) does at its start
app = serving_app_from_env()
paused = not gc.isenabled()
with TestClient(app) as http:
    ready = gc.isenabled(), gc.get_freeze_count() > 0, http.get("/healthz").status_code
print(paused, *ready)
"""


def test_serve_resumes_the_collector_when_ready() -> None:
    done = subprocess.run([sys.executable, "-c", START], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["True", "True", "True", "200"]
