"""The gateway's configuration file (YAML), read once at start and checked whole.

A mistake is an :class:`~opsloop.errors.InvalidInput` that names the field's path and what to
write instead (``routes.0.targets.1.weight: must be greater than 0``), so a bad file stops the
server before it serves, never a request later. The ``guardrails``, ``cache`` and ``limits``
sections stay raw here: the modules that build them validate their own part (see
:mod:`opsloop.app.gateway`).

Example::

    routes:
      - name: gpt-4o-mini                 # what clients send as "model"
        targets:
          - name: primary
            kind: openai
            base_url: https://api.openai.com/v1
            api_key_env: OPENAI_API_KEY
            weight: 3
            timeout_s: 30
          - name: backup
            base_url: http://10.0.0.7:8000/v1
            model: qwen2.5-7b-instruct    # the upstream's own model name
        retries: 1
        fallbacks: [local-small]
      - name: local-small
        targets: [{name: champion, kind: local, model: support-bot@champion}]
      - name: support-bot                 # a route of workspace team-a (default: default)
        workspace: team-a
        targets: [{name: champion, kind: local, model: support-bot@champion}]
    limits: {redis_url: redis://127.0.0.1:6379/0, on_store_down: closed}
    auth: keys
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from typing import Literal

import yaml
from pydantic import BaseModel
from pydantic import ConfigDict
from pydantic import Field
from pydantic import ValidationError
from pydantic import field_validator
from pydantic import model_validator

from opsloop.config import DEFAULT_WORKSPACE
from opsloop.config import check_workspace_name
from opsloop.console.files import yaml_problem
from opsloop.errors import InvalidInput
from opsloop.errors import validation_problems
from opsloop.llm.gateway.rollout_config import RolloutConfig

__all__ = ["GatewayConfig", "LimitsConfig", "RouteConfig", "TargetConfig", "load_config"]


def _repeated(names: list[str]) -> list[str]:
    """The names given more than once, sorted: a name must pick one target or route."""
    return sorted({n for n in names if names.count(n) > 1})


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TargetConfig(_Strict):
    """One place a route's requests can go: an OpenAI-compatible upstream or a local model.

    ``model`` is the upstream's model name (default: the route's name) or, for ``local``, the
    registered model version (``support-bot@champion``). ``timeout_s`` bounds the wait for an
    answer, and for each next chunk of a stream (an upstream that hangs mid-stream is cut).
    """

    name: str = Field(min_length=1, max_length=100)
    kind: Literal["openai", "local"] = "openai"
    base_url: str | None = None
    api_key_env: str | None = None
    model: str | None = None
    weight: float = Field(1.0, gt=0)
    timeout_s: float = Field(60.0, gt=0, le=3600)

    @model_validator(mode="after")
    def _check(self) -> TargetConfig:
        if self.kind == "openai":
            if not self.base_url or not self.base_url.startswith(("http://", "https://")):
                raise ValueError(
                    "an openai target needs base_url, an http(s) URL such as "
                    "https://api.openai.com/v1"
                )
        elif self.base_url or self.api_key_env:
            raise ValueError("a local target takes model (NAME@VERSION), not base_url/api_key_env")
        elif not self.model:
            raise ValueError("a local target needs model: the registered version, NAME@VERSION")
        return self

    def api_key(self) -> str | None:
        """The key read from ``api_key_env`` (checked to be set by :func:`load_config`)."""
        return os.environ.get(self.api_key_env) if self.api_key_env else None


class RouteConfig(_Strict):
    """What one model name maps to: weighted targets, retries, then fallback routes."""

    name: str = Field(min_length=1, max_length=200)
    # the workspace whose callers may name it, whose store keeps its traces and rollout, and
    # whose registry and prompts it uses; two workspaces may each have a route of one name
    workspace: str = DEFAULT_WORKSPACE
    targets: list[TargetConfig] = Field(min_length=1)
    retries: int = Field(0, ge=0, le=10)
    backoff_s: float = Field(0.1, ge=0, le=60)
    fallbacks: list[str] = Field(default_factory=list)
    guardrails: list[dict[str, Any]] = Field(default_factory=list)
    cache: dict[str, Any] = Field(default_factory=dict)
    rollout: RolloutConfig | None = None  # canary or A/B between two targets (rollout_config)

    @field_validator("workspace")
    @classmethod
    def _workspace(cls, name: str) -> str:
        try:
            return check_workspace_name(name)
        except InvalidInput as exc:
            raise ValueError(exc.message) from None

    @model_validator(mode="after")
    def _check(self) -> RouteConfig:
        names = [t.name for t in self.targets]
        if twice := _repeated(names):
            raise ValueError(f"target names must be unique in a route: {', '.join(twice)}")
        if self.rollout is not None:
            for side in ("baseline", "candidate"):
                if getattr(self.rollout, side) not in names:
                    raise ValueError(
                        f"rollout.{side} {getattr(self.rollout, side)!r} is not a target of "
                        f"this route; targets: {', '.join(names)}"
                    )
        if self.name in self.fallbacks:
            raise ValueError("a route cannot fall back to itself")
        return self


class LimitsConfig(BaseModel):
    """Where per-key limits are kept; the rest of the section is the limits module's."""

    model_config = ConfigDict(extra="allow", frozen=True)

    redis_url: str | None = None
    on_store_down: Literal["open", "closed"] = "closed"


class GatewayConfig(_Strict):
    """The whole file; :meth:`route` finds a route by the model name a client sent, and
    :meth:`for_workspace` gives the routes one workspace serves (route names and fallbacks are
    per workspace)."""

    routes: list[RouteConfig] = Field(default_factory=list)
    limits: LimitsConfig = Field(default_factory=LimitsConfig)
    auth: Literal["keys", "open"] = "keys"

    @model_validator(mode="after")
    def _check(self) -> GatewayConfig:
        for workspace in self.workspaces():
            names = [r.name for r in self.routes if r.workspace == workspace]
            if twice := _repeated(names):
                where = "" if workspace == DEFAULT_WORKSPACE else f" in workspace {workspace}"
                raise ValueError(f"route names must be unique{where}: {', '.join(twice)}")
            for i, route in enumerate(self.routes):
                unknown = [f for f in route.fallbacks if f not in names]
                if route.workspace == workspace and unknown:
                    raise ValueError(
                        f"routes.{i}.fallbacks names unknown route(s) {', '.join(unknown)}; "
                        f"known in workspace {workspace}: {', '.join(names)}"
                    )
        return self

    def workspaces(self) -> list[str]:
        """The workspaces the routes are for, ``default`` first."""
        return sorted({DEFAULT_WORKSPACE, *(r.workspace for r in self.routes)},
                      key=lambda w: (w != DEFAULT_WORKSPACE, w))  # fmt: skip

    def for_workspace(self, workspace: str) -> GatewayConfig:
        """The config with only the routes of ``workspace`` (limits and auth unchanged)."""
        routes = [r for r in self.routes if r.workspace == workspace]
        return self.model_copy(update={"routes": routes})

    def route(self, name: str) -> RouteConfig | None:
        return next((r for r in self.routes if r.name == name), None)


def parse_config(
    data: Any, source: str = "gateway config", *, check_keys: bool = True
) -> GatewayConfig:
    """``data`` (the YAML document) as a checked config; ``check_keys=False`` skips the check
    that each ``api_key_env`` is set (``opsloop guardrails test`` calls no upstream).

    Raises:
        InvalidInput: Naming each wrong field's path, or an ``api_key_env`` that is not set.
    """
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise InvalidInput(f"{source}: expected a mapping with 'routes', got {type(data).__name__}")
    try:
        config = GatewayConfig.model_validate(data)
    except ValidationError as exc:
        raise InvalidInput(f"{source}: " + "; ".join(validation_problems(exc))) from None
    for i, route in enumerate(config.routes):
        for j, target in enumerate(route.targets):
            if check_keys and target.api_key_env and not os.environ.get(target.api_key_env):
                raise InvalidInput(
                    f"{source}: routes.{i}.targets.{j}.api_key_env: the environment variable "
                    f"{target.api_key_env} is not set; export it, or drop api_key_env for an "
                    "upstream without keys"
                )
    return config


def load_config(path: str | Path, *, check_keys: bool = True) -> GatewayConfig:
    """Read and check the YAML file at ``path``.

    Raises:
        InvalidInput: The file is missing, is not YAML, or fails a check (see
            :func:`parse_config`).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidInput(f"cannot read gateway config {path}: {exc.strerror or exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidInput(f"{path} is not valid YAML: {yaml_problem(exc)}") from None
    return parse_config(data, str(path), check_keys=check_keys)
