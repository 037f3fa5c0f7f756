"""The deployments backend contract and its two implementations: in-process services or REST."""

from __future__ import annotations

from abc import ABC, abstractmethod
from urllib.parse import quote

from pydantic import TypeAdapter

from opsloop.kernel.identity import current_user
from opsloop.kernel.transport import HttpTransport
from opsloop.serving import rollouts, services
from opsloop.serving.entities import Deployment, DeploymentCreate, DeploymentEvent, TrafficPolicy
from opsloop.serving.rollout_entities import Rollout, RolloutSpec
from opsloop.store.database import Store

__all__ = ["DeploymentBackend", "HttpDeploymentBackend", "LocalDeploymentBackend"]

_LIST = TypeAdapter(list[Deployment])
_EVENTS = TypeAdapter(list[DeploymentEvent])


class DeploymentBackend(ABC):
    @abstractmethod
    def create(self, body: DeploymentCreate) -> Deployment: ...

    @abstractmethod
    def get(self, name: str) -> Deployment: ...

    @abstractmethod
    def list(self) -> list[Deployment]: ...

    @abstractmethod
    def set_policy(
        self, name: str, policy: TrafficPolicy, expected_revision: int | None, reason: str | None
    ) -> Deployment: ...

    @abstractmethod
    def promote(self, name: str, alias: str | None) -> Deployment: ...

    @abstractmethod
    def rollback(self, name: str, reason: str | None) -> Deployment: ...

    @abstractmethod
    def delete(self, name: str) -> None: ...

    @abstractmethod
    def events(self, name: str) -> list[DeploymentEvent]: ...

    @abstractmethod
    def record_batch(self, model_ref: str, input_ref: str | None, output_ref: str) -> None: ...

    @abstractmethod
    def start_rollout(self, name: str, spec: RolloutSpec) -> Rollout: ...

    @abstractmethod
    def rollout(self, name: str) -> Rollout: ...

    @abstractmethod
    def abort_rollout(self, name: str, reason: str | None) -> Rollout: ...


class LocalDeploymentBackend(DeploymentBackend):
    def __init__(self, store: Store) -> None:
        self.store = store

    def create(self, body: DeploymentCreate) -> Deployment:
        with self.store.write() as s:
            return services.create_deployment(s, body, current_user())

    def get(self, name: str) -> Deployment:
        with self.store.read() as s:
            return services.get_deployment(s, name)

    def list(self) -> list[Deployment]:
        with self.store.read() as s:
            return services.list_deployments(s)

    def set_policy(
        self, name: str, policy: TrafficPolicy, expected_revision: int | None, reason: str | None
    ) -> Deployment:
        with self.store.write() as s:
            return services.set_policy(
                s, name, policy, current_user(), reason=reason, expected_revision=expected_revision
            )

    def promote(self, name: str, alias: str | None) -> Deployment:
        with self.store.write() as s:
            return services.promote(s, name, current_user(), alias=alias)

    def rollback(self, name: str, reason: str | None) -> Deployment:
        with self.store.write() as s:
            return services.rollback(s, name, current_user(), reason)

    def delete(self, name: str) -> None:
        with self.store.write() as s:
            services.delete_deployment(s, name, current_user())

    def events(self, name: str) -> list[DeploymentEvent]:
        with self.store.read() as s:
            return services.deployment_events(s, name)

    def record_batch(self, model_ref: str, input_ref: str | None, output_ref: str) -> None:
        with self.store.write() as s:
            services.record_batch(s, model_ref, input_ref, output_ref)

    def start_rollout(self, name: str, spec: RolloutSpec) -> Rollout:
        with self.store.write() as s:
            return rollouts.start(s, name, spec, current_user())

    def rollout(self, name: str) -> Rollout:
        with self.store.read() as s:
            return rollouts.get_rollout(s, name)

    def abort_rollout(self, name: str, reason: str | None) -> Rollout:
        with self.store.write() as s:
            return rollouts.abort(s, name, current_user(), reason)


class HttpDeploymentBackend(DeploymentBackend):
    def __init__(self, transport: HttpTransport) -> None:
        self.http = transport

    @staticmethod
    def _path(name: str, rest: str = "") -> str:
        return f"/api/deployments/{quote(name)}{rest}"

    def create(self, body: DeploymentCreate) -> Deployment:
        response = self.http.request(
            "POST", "/api/deployments", json=body.model_dump(mode="json"), idempotent=False
        )
        return Deployment.model_validate(response.json())

    def get(self, name: str) -> Deployment:
        return Deployment.model_validate(self.http.request("GET", self._path(name)).json())

    def list(self) -> list[Deployment]:
        return _LIST.validate_python(self.http.request("GET", "/api/deployments").json())

    def set_policy(
        self, name: str, policy: TrafficPolicy, expected_revision: int | None, reason: str | None
    ) -> Deployment:
        body = {"policy": policy.model_dump(mode="json"), "expected_revision": expected_revision,
                "reason": reason}  # fmt: skip
        response = self.http.request("PUT", self._path(name, "/policy"), json=body)
        return Deployment.model_validate(response.json())

    def promote(self, name: str, alias: str | None) -> Deployment:
        response = self.http.request(
            "POST", self._path(name, "/promote"), json={"alias": alias}, idempotent=False
        )
        return Deployment.model_validate(response.json())

    def rollback(self, name: str, reason: str | None) -> Deployment:
        response = self.http.request(
            "POST", self._path(name, "/rollback"), json={"reason": reason}, idempotent=False
        )
        return Deployment.model_validate(response.json())

    def delete(self, name: str) -> None:
        self.http.request("DELETE", self._path(name))

    def events(self, name: str) -> list[DeploymentEvent]:
        return _EVENTS.validate_python(self.http.request("GET", self._path(name, "/events")).json())

    def record_batch(self, model_ref: str, input_ref: str | None, output_ref: str) -> None:
        body = {"model": model_ref, "input": input_ref, "output": output_ref}
        self.http.request("POST", "/api/batch-inferences", json=body)

    def start_rollout(self, name: str, spec: RolloutSpec) -> Rollout:
        response = self.http.request(
            "POST", self._path(name, "/rollouts"), json=spec.model_dump(mode="json"),
            idempotent=False,
        )  # fmt: skip
        return Rollout.model_validate(response.json())

    def rollout(self, name: str) -> Rollout:
        return Rollout.model_validate(self.http.request("GET", self._path(name, "/rollout")).json())

    def abort_rollout(self, name: str, reason: str | None) -> Rollout:
        response = self.http.request(
            "POST", self._path(name, "/rollout/abort"), json={"reason": reason}, idempotent=False
        )
        return Rollout.model_validate(response.json())
