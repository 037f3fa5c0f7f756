"""The real ``mlflow`` client pointed at a live opsloop server, for the MLflow protocol tests.

``use_mlflow(monkeypatch, url)`` sets what an MLflow user would (``MLFLOW_TRACKING_URI``, maybe
``MLFLOW_TRACKING_TOKEN``), turns the client's retries off so a refused request fails at once,
and forgets the fluent API's process-wide state (active experiment and run) between tests.
"""

from __future__ import annotations

import pytest


def use_mlflow(monkeypatch: pytest.MonkeyPatch, url: str, token: str | None = None) -> None:
    import mlflow
    from mlflow.tracking import fluent

    while mlflow.active_run() is not None:
        mlflow.end_run()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "60")
    monkeypatch.delenv("MLFLOW_EXPERIMENT_ID", raising=False)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
    if token is None:
        monkeypatch.delenv("MLFLOW_TRACKING_TOKEN", raising=False)
    else:
        monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", token)
    monkeypatch.setattr(fluent, "_active_experiment_id", None)
