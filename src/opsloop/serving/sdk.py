"""Deployments in the SDK: ``client.deployments.deploy("churn@champion")``, traffic changes,
and ``predict`` against a server (or an in-process runtime in local mode)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING
from typing import Any

from pydantic import ValidationError

from opsloop.config import Settings
from opsloop.errors import InvalidInput
from opsloop.errors import NotFound
from opsloop.errors import validation_problems
from opsloop.kernel.validation import validated
from opsloop.serving.backend import DeploymentBackend
from opsloop.serving.entities import Deployment
from opsloop.serving.entities import DeploymentCreate
from opsloop.serving.entities import DeploymentEvent
from opsloop.serving.entities import Sticky
from opsloop.serving.entities import TrafficPolicy
from opsloop.serving.ports import DataSource
from opsloop.serving.ports import ModelSource
from opsloop.serving.rollout_entities import Check
from opsloop.serving.rollout_entities import Rollout
from opsloop.serving.rollout_entities import RolloutSpec
from opsloop.serving.rollout_entities import Step

if TYPE_CHECKING:
    from opsloop.serving.batch import BatchResult
    from opsloop.serving.predlog import PredictionLog

__all__ = ["DeploymentsClient"]


def _policy(**fields: Any) -> TrafficPolicy:
    """A ``TrafficPolicy``, or ``InvalidInput`` saying which rule the request broke."""
    return validated(TrafficPolicy, "invalid traffic policy", **fields)


class DeploymentsClient:
    """Deploy registered versions and shift traffic between them.

    Example:
        >>> deployments = Client().deployments
        >>> deployments.deploy("churn@champion", name="churn")
        >>> deployments.deploy("churn@challenger", name="churn", canary=10)
        >>> deployments.predict("churn", [{"age": 41, "plan": "pro"}])
        >>> deployments.promote("churn")            # or .rollback("churn")
    """

    def __init__(
        self, backend: DeploymentBackend, models: ModelSource, data: Callable[[], DataSource],
        settings: Settings,
    ) -> None:  # fmt: skip
        """``models`` resolves the versions deployed and scores batches, ``data`` gives what
        holds batch inputs and outputs (asked for by a batch only: a monitor check, which reads
        the prediction log through this client, never builds the data client), ``settings``
        let Ray workers open their own client."""
        from opsloop.serving.held import HeldDeploymentBackend

        self._backend = HeldDeploymentBackend(backend)  # a reproduction's writes are held
        self._models = models
        self._data = data
        self._settings = settings

    def deploy(
        self,
        ref: str,
        *,
        name: str | None = None,
        canary: float | None = None,
        ab: float | None = None,
        sticky: Sticky | dict[str, str] | None = None,
        shadow: bool = False,
        description: str | None = None,
    ) -> Deployment:
        """Serve ``ref`` (``NAME@N`` / ``NAME@alias``) as deployment ``name`` (default: the
        model's name). On an existing deployment, ``canary=PCT``, ``ab=PCT`` or ``shadow``
        add it as the candidate; with none of them it replaces what is served."""
        version = self._models.version(ref)
        name = name or version.name
        modes = [m for m, on in (("canary", canary is not None), ("ab", ab is not None),
                                 ("shadow", shadow)) if on]  # fmt: skip
        if len(modes) > 1:
            raise InvalidInput(f"choose one of canary, ab or shadow, not {' and '.join(modes)}")
        existing = self._find(name)
        if existing is None:
            if modes:
                raise InvalidInput(
                    f"deployment {name!r} does not exist yet: deploy a stable version first"
                )
            return self._backend.create(
                DeploymentCreate(
                    name=name,
                    model=version.name,
                    description=description,
                    policy=_policy(stable=version.number),
                )
            )
        if existing.model != version.name:
            raise InvalidInput(
                f"deployment {name!r} serves model {existing.model!r}, not {version.name!r}"
            )
        if not modes:
            policy = _policy(stable=version.number)
        else:
            stick = Sticky(**sticky) if isinstance(sticky, dict) else sticky
            weight = canary if canary is not None else (ab or 0.0)
            policy = _policy(
                mode=modes[0], stable=existing.policy.stable, candidate=version.number,  # type: ignore[arg-type]
                weight=weight, sticky=stick,
            )  # fmt: skip
        return self._backend.set_policy(name, policy, existing.revision, f"deploy {ref}")

    def _find(self, name: str) -> Deployment | None:
        try:
            return self._backend.get(name)
        except NotFound:
            return None

    def get(self, name: str) -> Deployment:
        return self._backend.get(name)

    def list(self) -> list[Deployment]:
        return self._backend.list()

    def set_traffic(self, name: str, weight: float, *, reason: str | None = None) -> Deployment:
        """Send ``weight`` percent of traffic to the candidate (canary or A/B)."""
        current = self._backend.get(name)
        if current.policy.candidate is None or current.policy.mode == "shadow":
            raise InvalidInput(f"deployment {name!r} has no canary or A/B candidate to weigh")
        policy = current.policy.model_copy(update={"weight": weight})
        return self._backend.set_policy(
            name, _policy(**policy.model_dump()), current.revision, reason
        )

    def set_policy(
        self, name: str, policy: TrafficPolicy, *, reason: str | None = None
    ) -> Deployment:
        return self._backend.set_policy(name, policy, None, reason)

    def promote(self, name: str, *, alias: str | None = "champion") -> Deployment:
        return self._backend.promote(name, alias)

    def rollback(self, name: str, *, reason: str | None = None) -> Deployment:
        return self._backend.rollback(name, reason)

    def delete(self, name: str) -> None:
        self._backend.delete(name)

    def events(self, name: str) -> list[DeploymentEvent]:
        return self._backend.events(name)

    # -- rollouts -----------------------------------------------------------------------------
    def rollout(
        self,
        ref: str,
        *,
        name: str | None = None,
        steps: list[dict[str, Any] | Step],
        checks: list[dict[str, Any] | Check] | None = None,
        failure_limit: int = 0,
        max_inconclusive_seconds: float = 600,
        promote_alias: str | None = "champion",
    ) -> Rollout:
        """Roll ``ref`` out on deployment ``name`` step by step, promoting or rolling back on
        the checks' verdicts. A server's controller walks the steps; in local mode call
        :meth:`advance` (``opsloop deployments rollout --watch`` does)."""
        version = self._models.version(ref)
        try:
            spec = RolloutSpec(
                candidate=version.number,
                steps=[s if isinstance(s, Step) else Step(**s) for s in steps],
                checks=[c if isinstance(c, Check) else Check(**c) for c in checks or []],
                failure_limit=failure_limit, max_inconclusive_seconds=max_inconclusive_seconds,
                promote_alias=promote_alias,
            )  # fmt: skip
        except ValidationError as exc:
            reasons = "; ".join(validation_problems(exc))
            raise InvalidInput(f"invalid rollout: {reasons}") from None
        return self._backend.start_rollout(name or version.name, spec)

    def rollout_status(self, name: str) -> Rollout:
        return self._backend.rollout(name)

    def abort_rollout(self, name: str, *, reason: str | None = None) -> Rollout:
        return self._backend.abort_rollout(name, reason)

    def advance(self, name: str) -> Rollout:
        """Local mode: move the running rollout on, judging this process's prediction log
        (with a server its controller does the work, and this reads the rollout)."""
        return self._backend.advance(name)

    # -- batch --------------------------------------------------------------------------------
    def predict_batch(
        self, model_ref: str, source: str | Any, output: str, **options: Any
    ) -> BatchResult:
        """Score a data version or a Parquet/CSV/JSON-lines path in chunks into a new data
        version ``output`` (see :func:`opsloop.serving.batch.predict_batch`)."""
        from opsloop.serving.batch import predict_batch

        return predict_batch(
            model_ref, source, output, models=self._models, data=self._data(),
            lineage=self._backend, settings=self._settings, **options,
        )  # fmt: skip

    # -- inference ----------------------------------------------------------------------------
    def predict(
        self, name: str, records: list[dict[str, Any]] | dict[str, Any], *,
        headers: dict[str, str] | None = None,
    ) -> dict[str, Any]:  # fmt: skip
        """Predict through the deployment: over HTTP with a server, in-process otherwise."""
        body = records if isinstance(records, dict) else {"records": records}
        return self._backend.predict(name, body, headers)

    def predictions(self, name: str) -> Any:
        """Logged predictions with joined labels (local mode: this process's log)."""
        return self._backend.predictions(name)

    def feedback(self, name: str, labels: dict[str, Any]) -> int:
        """Ground truth by request id: ``{request_id: label, ...}``."""
        items = [{"request_id": k, "label": v} for k, v in labels.items()]
        return self._backend.feedback(name, items)

    @property
    def prediction_log(self) -> PredictionLog:
        """This process's prediction log (local mode), which its monitors, scheduler and
        rollout checks read. ``InvalidInput`` with a server: it keeps its own."""
        return self._backend.prediction_log

    def close(self) -> None:
        self._backend.close()
