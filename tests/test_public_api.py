"""The public SDK surface is exactly ``opsloop.__all__``, and importing it stays cheap."""

from __future__ import annotations

import subprocess
import sys

import opsloop

EXPECTED = {
    "ActiveRun", "Artifact", "Client", "Conflict", "Experiment", "InvalidInput", "MetricHistory",
    "NotFound", "OpsloopError", "Page", "PermissionDenied", "Run", "RunData", "RunInfo",
    "RunStatus", "Settings", "StoreError", "Unauthenticated", "__version__", "active_run",
    "DriftReport", "drift", "end_run", "evaluate", "flush", "get_client", "get_run",
    "load_settings", "log_artifact",
    "log_artifacts", "log_batch", "log_dataframe", "log_dict", "log_figure", "log_input",
    "log_metric", "log_metrics", "log_model", "log_output", "log_param", "log_params", "log_text",
    "observe",
    "search_runs", "seed_everything", "set_experiment", "set_tag", "set_tags", "start_run",
}  # fmt: skip


def test_all_is_exactly_the_public_names() -> None:
    assert set(opsloop.__all__) == EXPECTED
    for name in opsloop.__all__:
        assert getattr(opsloop, name) is not None


def test_import_is_lazy() -> None:
    heavy = "('sqlalchemy', 'httpx', 'pydantic', 'fastapi', 'duckdb')"
    code = f"import sys, opsloop; print(sorted(m for m in {heavy} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_data_and_models_are_reachable_without_an_import() -> None:
    assert callable(opsloop.data.add) and callable(opsloop.data.get)
    assert callable(opsloop.models.register) and callable(opsloop.models.load)
    assert callable(opsloop.prompts.create) and callable(opsloop.prompts.get)


def test_error_tree_maps_to_http_and_exit_codes() -> None:
    from opsloop import errors

    assert issubclass(errors.NotFound, LookupError) and errors.NotFound.http_status == 404
    assert issubclass(errors.InvalidInput, ValueError) and errors.InvalidInput.exit_code == 2
    assert errors.Conflict.http_status == 409 and errors.Unauthenticated.http_status == 401
    assert errors.PermissionDenied.http_status == 403 and errors.StoreError.http_status == 503
    assert errors.error_class_for_code("NOT_FOUND") is errors.NotFound
    assert errors.error_class_for_code("???") is errors.OpsloopError
