"""What everyday commands import, each in a fresh process (issue 22, "Everyday speed").

A library imported by a command is paid on every call. ``log_model`` of a scikit-learn pipeline
paid 1.2-3.5 s for torch, which skops's walk over scikit-learn imported
(``sklearn.externals.array_api_compat.torch``), and listings paid for NumPy and Arrow through
modules they never call. These tests run real commands in subprocesses and read
``sys.modules`` at the end; timings are for ``bench/cli.py``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

TRAIN_AND_LOG = """
import json, sys
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
import opsloop

frame = load_breast_cancer(as_frame=True).frame
X, y = frame.drop(columns=["target"]), frame["target"]
model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(X, y)
with opsloop.start_run() as run:
    opsloop.log_model(model, "model", input_example=X.head())
opsloop.models.register("clf", run_id=run.info.run_id)
loaded = opsloop.models.load("clf@1")
assert list(loaded.predict(X.head(3))) == list(model.predict(X.head(3)))
print(json.dumps(sorted(sys.modules)))
"""

COMMAND = """
import json, sys
from opsloop.app.cli import main
try:
    main({argv!r})
except SystemExit as exc:
    assert not exc.code, exc.code
print(json.dumps(sorted(sys.modules)))
"""

HEAVY_FOR_SKLEARN = {"torch", "transformers", "tensorflow", "jax", "pytest"}
HEAVY_FOR_LISTING = {"numpy", "pandas", "pyarrow", "sklearn", "skops", "torch", "fastapi"}


def imported(source: str) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-c", source], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return {name.partition(".")[0] for name in json.loads(done.stdout.splitlines()[-1])}


def test_sklearn_models_never_import_torch(tmp_path: Path) -> None:
    """Logging, registering and loading a scikit-learn pipeline, then showing it."""
    modules = imported(TRAIN_AND_LOG)
    assert "skops" in modules and "sklearn" in modules
    assert not modules & HEAVY_FOR_SKLEARN, modules & HEAVY_FOR_SKLEARN
    for argv in (["models", "show", "clf"], ["models", "predict", "clf@1", "rows.csv"]):
        if argv[1] == "predict":
            from sklearn.datasets import load_breast_cancer

            frame = load_breast_cancer(as_frame=True).frame.drop(columns=["target"])
            frame.head(3).to_csv(tmp_path / "rows.csv", index=False)
        modules = imported(COMMAND.format(argv=argv))
        assert not modules & HEAVY_FOR_SKLEARN, (argv, modules & HEAVY_FOR_SKLEARN)


def test_listings_import_no_data_libraries(tmp_path: Path) -> None:
    """Listing and show commands read a few rows: no NumPy, pandas, Arrow or model library."""
    import opsloop

    opsloop.set_experiment("exp")
    with opsloop.start_run():
        opsloop.log_metric("m", 1.0)
    opsloop.get_client().models.create("clf")
    for argv in (
        ["experiments", "list"],
        ["runs", "list", "-e", "exp"],
        ["models", "list"],
        ["models", "show", "clf"],
        ["models", "history", "clf"],
        ["deployments", "list"],
    ):
        modules = imported(COMMAND.format(argv=argv))
        assert not modules & HEAVY_FOR_LISTING, (argv, modules & HEAVY_FOR_LISTING)


def test_a_command_imports_its_own_group_only(tmp_path: Path) -> None:
    """``opsloop experiments ...`` imports neither the runs group nor the pipelines package
    (the runs group's ``reproduce`` command comes from the pipelines); a models command
    imports no other group's commands."""
    import opsloop

    opsloop.set_experiment("exp")
    opsloop.get_client().models.create("clf")
    for argv, absent in (
        (["experiments", "list"], ("opsloop.pipelines",)),
        (["experiments", "show", "exp"], ("opsloop.pipelines",)),
        (["models", "list"], ("opsloop.pipelines", "opsloop.tracking.cli", "opsloop.data.cli")),
    ):
        done = subprocess.run(
            [sys.executable, "-c", COMMAND.format(argv=argv)], capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr[-3000:]
        modules = json.loads(done.stdout.splitlines()[-1])
        found = [m for m in modules if m.startswith(absent)]
        assert not found, (argv, found)


def test_lean_estimator_walk_lists_what_scikit_learn_lists() -> None:
    """skops trusts scikit-learn's estimators by default; the walk opsloop gives it while it
    is imported must find exactly the list ``all_estimators`` finds (in its own process: the
    original walk imports torch)."""
    source = (
        "from sklearn.utils import all_estimators\n"
        "from opsloop.registry.sklearn_imports import _public_estimators, skops_io\n"
        "import sklearn.utils\n"
        "skops_io()\n"
        "assert sklearn.utils.all_estimators is all_estimators\n"
        "lean = _public_estimators()\n"
        "assert lean == all_estimators(), set(all_estimators()) ^ set(lean)\n"
        "from skops.io._trusted_types import SKLEARN_ESTIMATOR_TYPE_NAMES as names\n"
        "from skops.io._utils import get_type_name\n"
        "full = [get_type_name(c) for _, c in all_estimators()]\n"
        "assert names == [n for n in full if n.startswith('sklearn.')]\n"
        "assert len(lean) > 150\n"
        "import json, sys; print(json.dumps(sorted(sys.modules)))\n"
    )
    imported(source)
