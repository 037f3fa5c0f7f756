"""The serving runtime: deployments cached with a short TTL, models loaded once per version,
routing, prediction, shadow copies off the request path, and logging.

A candidate (canary or A/B) answers on a small pool of its own with ``candidate_timeout``;
one that fails or hangs is logged as its error and the stable version answers instead.
A traffic change reaches a running server within ``policy_ttl`` seconds (1 s) without a
restart or a dropped request: the next request after the TTL reads the new policy and loads any
new version (warm-up does it ahead for the versions known at start). A caller asking for
``predict_proba`` gets the routed version's class probabilities through the same path (routing,
batching, fallback, log: the log keeps the labels and the probabilities either way). Shadow
copies run on a
small thread pool with a bounded backlog; when it is full the copy is dropped and counted,
never queued behind the answer.
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any
from typing import Protocol

from opsloop.errors import InvalidInput
from opsloop.errors import OpsloopError
from opsloop.serving.batching import MicroBatcher
from opsloop.serving.entities import Deployment
from opsloop.serving.metrics import ServingMetrics
from opsloop.serving.payload import predict_method
from opsloop.serving.payload import read_rows
from opsloop.serving.ports import ModelSource
from opsloop.serving.predlog import PredictionLog
from opsloop.serving.routing import choose

__all__ = ["DeploymentReader", "ServingRuntime"]


class DeploymentReader(Protocol):
    """Where the runtime reads deployments: a ``DeploymentBackend`` or the SDK's
    ``DeploymentsClient`` (in-process, or a server's)."""

    def get(self, name: str) -> Deployment:
        """The deployment ``name``; ``NotFound`` if there is none."""
        ...

    def list(self) -> list[Deployment]:
        """Every deployment."""
        ...


def _jsonable(values: Any) -> list[Any]:
    if hasattr(values, "tolist"):
        return values.tolist()
    return list(values)


class ServingRuntime:
    """Answers predictions for every deployment ``deployments`` reads, with the versions
    ``models`` loads, logging to ``log`` and counting in ``metrics``."""

    def __init__(
        self,
        deployments: DeploymentReader,
        models: ModelSource,
        log: PredictionLog,
        metrics: ServingMetrics,
        *,
        policy_ttl: float = 1.0,
        shadow_backlog: int = 256,
        candidate_timeout: float = 2.0,
    ) -> None:
        self.deployments = deployments
        self.models = models
        self.log = log
        self.metrics = metrics
        self.policy_ttl = policy_ttl
        self._deployments: dict[str, tuple[float, Deployment]] = {}
        self._models: dict[tuple[str, int], Any] = {}
        self._batchers: dict[tuple[str, int], MicroBatcher] = {}
        self._load_lock = threading.Lock()
        self.candidate_timeout = candidate_timeout
        self._shadow_pool = ThreadPoolExecutor(2, thread_name_prefix="opsloop-shadow")
        # Candidates answer on their own small pool, so a hung one holds at most these threads
        # and its callers get the stable version's answer after ``candidate_timeout``.
        self._candidate_pool = ThreadPoolExecutor(4, thread_name_prefix="opsloop-candidate")
        self._shadow_pending = threading.Semaphore(shadow_backlog)

    # -- state --------------------------------------------------------------------------------
    def deployment(self, name: str) -> Deployment:
        now = time.monotonic()
        cached = self._deployments.get(name)
        if cached is not None and now - cached[0] < self.policy_ttl:
            return cached[1]
        deployment = self.deployments.get(name)
        self._deployments[name] = (now, deployment)
        return deployment

    def forget(self, name: str) -> None:
        """Drop the cached policy of ``name``: the next request reads it again."""
        self._deployments.pop(name, None)

    def model(self, deployment: Deployment, number: int) -> Any:
        key = (deployment.model, number)
        model = self._models.get(key)
        if model is None:
            with self._load_lock:
                model = self._models.get(key)
                if model is None:
                    model = self.models.load(deployment.ref(number))
                    self._models[key] = model
        return model

    def batcher(self, deployment: Deployment, number: int) -> MicroBatcher:
        key = (deployment.model, number)
        batcher = self._batchers.get(key)
        if batcher is None:
            model = self.model(deployment, number)
            with self._load_lock:
                batcher = self._batchers.setdefault(key, MicroBatcher(model))
        return batcher

    def _answer(
        self, deployment: Deployment, number: int, rows: Any, count: int, method: str
    ) -> tuple[list[Any], list[Any], list[Any] | None, int]:
        """What version ``number`` answers for ``rows`` (labels, or with ``predict_proba`` the
        class probabilities per row), its labels and probabilities as the log keeps them, and
        the size of the batch they rode in (checked alone, maybe batched)."""
        outputs, proba, batch_rows = self.batcher(deployment, number).predict_scored(rows, count)
        labels = _jsonable(outputs)
        if method == "predict_proba":
            if proba is None:
                raise InvalidInput(
                    f"{deployment.ref(number)} gives no probabilities (not a classifier with "
                    "predict_proba): leave predict_method out to get its predictions"
                )
            return proba, labels, _logged_proba(proba), batch_rows
        return labels, labels, _logged_proba(proba), batch_rows

    def _candidate(
        self, deployment: Deployment, number: int, rows: Any, count: int, method: str
    ) -> tuple[list[Any], list[Any], list[Any] | None, int]:
        future = self._candidate_pool.submit(self._answer, deployment, number, rows, count, method)
        try:
            return future.result(timeout=self.candidate_timeout)
        except FutureTimeout:
            raise TimeoutError(
                f"candidate v{number} did not answer within {self.candidate_timeout:g} s"
            ) from None

    def warm_up(self, only: str | None = None) -> list[str]:
        """Load every version every deployment (or only the one named) serves; returns what was
        loaded."""
        loaded = []
        for deployment in self.deployments.list():
            if only is not None and deployment.name != only:
                continue
            self._deployments[deployment.name] = (time.monotonic(), deployment)
            for number in deployment.policy.versions():
                model = self.model(deployment, number)
                columns = model.signature.inputs.columns
                if columns:  # one prediction so the first request pays no lazy set-up
                    example = {c.name: _example(c.type) for c in columns}
                    with contextlib.suppress(OpsloopError):
                        model.predict([example])
                loaded.append(deployment.ref(number))
        return loaded

    # -- answering ----------------------------------------------------------------------------
    def predict(
        self, name: str, body: Any, headers: Mapping[str, str], cookies: Mapping[str, str]
    ) -> dict[str, Any]:
        """Answer with the routed version. A candidate that fails (raises, or refuses input
        the stable version takes) is logged as its error, counted against it in a rollout,
        and the stable version answers instead: the caller never sees a candidate's fault.
        ``params.predict_method`` in ``body`` (MLflow's) picks labels or probabilities."""
        start = time.perf_counter()
        deployment = self.deployment(name)
        rows, count = read_rows(body)
        method = predict_method(body)
        route = choose(deployment.policy, name, headers, cookies)
        stable = deployment.policy.stable
        request_id = headers.get("x-request-id") or uuid.uuid4().hex
        metrics = self.metrics
        metrics.in_flight.labels(name).inc()
        answer: dict[str, Any] = {"request_id": request_id, "deployment": name}
        try:
            version = route.version
            try:
                if version == stable:
                    answered, outputs, proba, batch_rows = self._answer(
                        deployment, version, rows, count, method
                    )
                else:
                    answered, outputs, proba, batch_rows = self._candidate(
                        deployment, version, rows, count, method
                    )
            except Exception as exc:
                if version == stable:
                    status = "invalid" if isinstance(exc, InvalidInput) else "error"
                    metrics.requests.labels(name, str(version), status).inc()
                    if status == "error":
                        self._log(deployment, request_id, version, start, body, None, exc)
                    raise
                metrics.requests.labels(name, str(version), "error").inc()
                self._log(deployment, request_id, version, start, body, None, exc)
                answer["fallback_from"] = deployment.ref(version)
                version = stable
                answered, outputs, proba, batch_rows = self._answer(
                    deployment, version, rows, count, method
                )
        finally:
            metrics.in_flight.labels(name).dec()
        latency = time.perf_counter() - start
        self._log(deployment, request_id, version, start, body, outputs, None, proba=proba)
        label = str(version)
        metrics.requests.labels(name, label, "ok").inc()
        metrics.latency.labels(name, label).observe(latency)
        metrics.batch_size.labels(name, label).observe(batch_rows)
        if route.shadow is not None:
            self._shadow(deployment, route.shadow, rows, body, request_id)
        answer.update(model=deployment.ref(version), predictions=answered)
        return answer

    def _log(
        self, deployment: Deployment, request_id: str, version: int, start: float, body: Any,
        outputs: Any, error: BaseException | None, *, shadow: bool = False,
        proba: list[Any] | None = None,
    ) -> None:  # fmt: skip
        self.log.log(
            {
                "request_id": request_id, "deployment": deployment.name,
                "model": deployment.model, "version": version, "ts_ms": int(time.time() * 1000),
                "latency_ms": (time.perf_counter() - start) * 1000, "inputs": body,
                "outputs": outputs, "shadow": shadow,
                "error": None if error is None else f"{type(error).__name__}: {error}",
                "proba": proba,
            }
        )  # fmt: skip

    def _shadow(
        self, deployment: Deployment, number: int, rows: Any, body: Any, request_id: str
    ) -> None:
        label = str(number)
        if not self._shadow_pending.acquire(blocking=False):
            self.metrics.shadow.labels(deployment.name, label, "dropped").inc()
            return

        def run() -> None:
            start = time.perf_counter()
            outputs, error, status = None, None, "ok"
            try:
                outputs = _jsonable(self.model(deployment, number).predict(rows))
            except Exception as exc:  # a failing shadow is logged, never raised
                error, status = exc, "error"
            finally:
                self._shadow_pending.release()
            self.metrics.shadow.labels(deployment.name, label, status).inc()
            self._log(deployment, request_id, number, start, body, outputs, error, shadow=True)

        self._shadow_pool.submit(run)

    def feedback(self, name: str, labels: list[dict[str, Any]]) -> int:
        self.deployment(name)  # NotFound for an unknown deployment
        for item in labels:
            request_id = item.get("request_id")
            if not isinstance(request_id, str) or not request_id or "label" not in item:
                raise InvalidInput("each feedback item needs request_id (a string) and label")
        for item in labels:
            self.log.label(name, item["request_id"], item["label"])
        return len(labels)

    def close(self) -> None:
        self._candidate_pool.shutdown(wait=False, cancel_futures=True)
        self._shadow_pool.shutdown(wait=True)
        self.log.close()


def _logged_proba(proba: list[Any] | None) -> list[Any] | None:
    """Probabilities as the log keeps them for monitors: a binary classifier's positive class
    per row, the whole list per row for more classes."""
    if proba is None or not proba or len(proba[0]) != 2:
        return proba
    return [row[1] for row in proba]


def _example(kind: str) -> Any:
    return {"float": 0.0, "integer": 0, "boolean": False, "string": ""}.get(kind, 0.0)
