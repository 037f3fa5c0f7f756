"""Which role each route needs, written once for the REST API, the UI pages and the SDK.

The server's one auth dependency (``opsloop.web.deps.require_token``) asks :class:`RouteRoles`
for the route a request matched. Reads (GET, HEAD, OPTIONS) need ``viewer`` and writes need
``editor``, unless :data:`RULES` says otherwise for the route's method and full path template:
POSTs that only read (a search, a download, a drift report, a prediction), everything that
deploys, rolls out or back, or runs code in the server process (``maintainer``), and user and
key management. A route that moves an alias or a label needs ``maintainer`` when the alias is
protected (``champion``, ``production``): the rule names the path parameter (or, for a prompt
version saved with labels, the JSON body field) that holds it.

``tests/governance/test_route_roles.py`` walks every route of the app: each resolves to a role,
and every rule below names a route that exists, so a renamed route cannot lose its mark.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.routing import iter_route_contexts

from opsloop.governance.roles import ADMIN
from opsloop.governance.roles import EDITOR
from opsloop.governance.roles import MAINTAINER
from opsloop.governance.roles import PROTECTED_ALIASES
from opsloop.governance.roles import VIEWER
from opsloop.governance.roles import rank
from opsloop.kernel.identity import current_principal
from opsloop.web.mlflow import MLFLOW_API

__all__ = ["RULES", "SAFE_METHODS", "RouteRoles", "Rule", "may", "rule_for"]

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class Rule:
    """What a route needs: ``role``, raised to ``maintainer`` when the path parameter
    ``alias_param`` (or the JSON body field ``alias_field``: one alias or a list) is protected."""

    role: str
    alias_param: str | None = None
    alias_field: str | None = None

    def needs(self, path_params: dict[str, Any], body: Any = None) -> tuple[str, str | None]:
        """The role this request needs, given its path parameters (and body, if read), and
        the protected alias that raised it, if one did."""
        if self.alias_param:
            alias = path_params.get(self.alias_param)
            if alias in PROTECTED_ALIASES:
                return MAINTAINER, str(alias)
        if self.alias_field and isinstance(body, dict):
            given = body.get(self.alias_field)
            given = [given] if isinstance(given, str) else given  # MLflow names one alias
            if isinstance(given, list):
                protected = sorted(PROTECTED_ALIASES.intersection(map(str, given)))
                if protected:
                    return MAINTAINER, protected[0]
        return self.role, None


_ALIAS = Rule(EDITOR, alias_param="alias")
_LABEL = Rule(EDITOR, alias_param="label")

RULES: dict[tuple[str, str], Rule] = {
    # POSTs that read
    ("POST", "/api/runs/search"): Rule(VIEWER),
    ("POST", "/api/blobs/batch-download"): Rule(VIEWER),
    ("POST", "/api/drift-reports"): Rule(VIEWER),
    ("POST", "/v1/deployments/{name}/predict"): Rule(VIEWER),  # using a model changes nothing
    ("POST", "/v1/chat/completions"): Rule(VIEWER),  # the LLM gateway: calling a model too
    ("POST", "/v1/embeddings"): Rule(VIEWER),
    ("POST", "/api/prompt-renders"): Rule(VIEWER),  # renders a template, stores nothing
    ("GET", "/prompts/{name}/edit"): Rule(EDITOR),  # the edit form: its post needs editor
    # aliases and labels: maintainer for the protected ones
    ("PUT", "/api/models/{name}/aliases/{alias}"): _ALIAS,
    ("DELETE", "/api/models/{name}/aliases/{alias}"): _ALIAS,
    ("PUT", "/api/datasets/{name}/aliases/{alias}"): _ALIAS,
    ("DELETE", "/api/datasets/{name}/aliases/{alias}"): _ALIAS,
    ("PUT", "/api/prompts/{name}/labels/{label}"): _LABEL,
    ("DELETE", "/api/prompts/{name}/labels/{label}"): _LABEL,
    ("POST", "/api/prompts/{name}/versions"): Rule(EDITOR, alias_field="labels"),
    ("POST", "/api/models/{name}/versions/{selector}/promote"): Rule(MAINTAINER),
    # registers a version (editor), and with `alias` moves it on a pass: protected ones need more
    ("POST", "/api/models/{name}/versions/{selector}/compress"): Rule(EDITOR, alias_field="alias"),
    ("PUT", "/api/prompts/{name}/label-rules/{label}"): Rule(MAINTAINER),
    ("DELETE", "/api/prompts/{name}/label-rules/{label}"): Rule(MAINTAINER),
    # deploy, roll out, roll back
    ("POST", "/api/deployments"): Rule(MAINTAINER),
    ("PUT", "/api/deployments/{name}/policy"): Rule(MAINTAINER),
    ("POST", "/api/deployments/{name}/promote"): Rule(MAINTAINER),
    ("POST", "/api/deployments/{name}/rollback"): Rule(MAINTAINER),
    ("DELETE", "/api/deployments/{name}"): Rule(MAINTAINER),
    ("POST", "/api/deployments/{name}/rollouts"): Rule(MAINTAINER),
    ("POST", "/api/deployments/{name}/rollout/abort"): Rule(MAINTAINER),
    ("POST", "/api/batch-inferences"): Rule(MAINTAINER),
    ("POST", "/api/gateway/routes/{route}/rollout"): Rule(MAINTAINER),  # promote, roll back
    # run code in the server process
    ("POST", "/api/pipelines/runs"): Rule(MAINTAINER),
    ("POST", "/api/pipelines/runs/{run_id}/resume"): Rule(MAINTAINER),
    ("POST", "/api/pipelines/runs/{run_id}/reproduce"): Rule(MAINTAINER),
    ("POST", "/api/pipelines/runs/{run_id}/cancel"): Rule(MAINTAINER),
    ("POST", "/api/tuning"): Rule(MAINTAINER),
    ("POST", "/api/triggers"): Rule(MAINTAINER),
    ("DELETE", "/api/triggers/{name}"): Rule(MAINTAINER),
    ("POST", "/api/triggers/{name}/fire"): Rule(MAINTAINER),
    ("POST", "/pipelines/runs/{run_id}/reproduce"): Rule(MAINTAINER),  # the UI's buttons
    ("POST", "/pipelines/runs/{run_id}/resume"): Rule(MAINTAINER),
    ("POST", "/pipelines/runs/{run_id}/cancel"): Rule(MAINTAINER),
    ("POST", "/pipelines/triggers/{name}/fire"): Rule(MAINTAINER),
    # governance: users are an admin's; keys are their owner's (services check the owner)
    ("GET", "/api/users"): Rule(ADMIN),
    ("POST", "/api/users"): Rule(ADMIN),
    ("GET", "/api/users/{name}"): Rule(ADMIN),
    ("PUT", "/api/users/{name}/role"): Rule(ADMIN),
    ("POST", "/api/users/{name}/disable"): Rule(ADMIN),
    ("POST", "/api/users/{name}/enable"): Rule(ADMIN),
    ("POST", "/api/keys"): Rule(VIEWER),
    ("POST", "/api/workspaces"): Rule(ADMIN),  # listing them is anyone's
    # the audit log: who did what is an admin's to read
    ("GET", "/api/audit"): Rule(ADMIN),
    ("GET", "/api/audit/verify"): Rule(ADMIN),
    ("GET", "/audit"): Rule(ADMIN),
    ("DELETE", "/api/keys/{key_id}"): Rule(VIEWER),
    ("PATCH", "/api/keys/{key_id}/limits"): Rule(ADMIN),  # an owner must not lift their own
    # data privacy: retention and erasure are an admin's
    ("GET", "/api/privacy/retention"): Rule(ADMIN),
    ("PUT", "/api/privacy/retention"): Rule(ADMIN),
    ("POST", "/api/privacy/sweeps"): Rule(ADMIN),
    ("POST", "/api/privacy/erasures"): Rule(ADMIN),
    ("GET", "/api/privacy/masking"): Rule(ADMIN),
    ("PUT", "/api/privacy/masking"): Rule(ADMIN),
}
# MLflow's REST API (opsloop.web.mlflow; its ajax-api alias is rewritten to it before routing):
# reads and writes as above, and its searches are POSTs that read
RULES[("POST", f"{MLFLOW_API}/runs/search")] = Rule(VIEWER)
RULES[("POST", f"{MLFLOW_API}/experiments/search")] = Rule(VIEWER)
RULES[("POST", f"{MLFLOW_API}/logged-models/search")] = Rule(VIEWER)
RULES[("POST", f"{MLFLOW_API}/registered-models/get-latest-versions")] = Rule(VIEWER)
RULES[("POST", f"{MLFLOW_API}/registered-models/alias")] = Rule(EDITOR, alias_field="alias")
RULES[("DELETE", f"{MLFLOW_API}/registered-models/alias")] = Rule(EDITOR, alias_field="alias")


def may(method: str, template: str) -> bool:
    """Whether the request's caller passes the rule of ``method template`` (the full path): what
    a page asks before it shows a button that calls that route. No principal: a token or open
    server, whose auth check does not look at roles."""
    principal = current_principal()
    return principal is None or rank(principal.role) >= rank(rule_for(method, template).role)


def rule_for(method: str, template: str) -> Rule:
    """The rule for ``method`` on the full path ``template``: the explicit one, else viewer
    for reads and editor for writes."""
    found = RULES.get((method, template))
    if found is not None:
        return found
    return Rule(VIEWER if method in SAFE_METHODS else EDITOR)


class RouteRoles:
    """The rule of every route of one app, looked up by the route object a request matched.

    FastAPI puts the router's own route (its path without the mount prefix) in the request
    scope, so the full templates are collected once, on first use, by walking the app.
    """

    def __init__(self) -> None:
        self._by_route: dict[int, tuple[str, dict[str, Rule]]] = {}
        self._built = False
        self._lock = threading.Lock()

    def build(self, app: FastAPI) -> None:
        """Classify every route of ``app`` (done on first use; again to pick up new routes)."""
        table: dict[int, tuple[str, dict[str, Rule]]] = {}
        for context in iter_route_contexts(app.routes):
            route = context.original_route
            if isinstance(route, APIRoute) and context.path_format:
                template = str(context.path_format)
                methods = set(context.methods or ())
                table[id(route)] = (template, {m: rule_for(m, template) for m in methods})
        self._by_route = table
        self._built = True

    def entries(self, app: FastAPI) -> list[tuple[str, str, Rule]]:
        """``(method, template, rule)`` for every route of ``app``, for tests and docs."""
        self.build(app)
        return sorted(
            (method, template, rule)
            for template, rules in self._by_route.values()
            for method, rule in rules.items()
        )

    def lookup(self, app: FastAPI, route: Any, method: str) -> tuple[str, Rule]:
        """The full template and the rule for ``route`` (the scope's ``route``)."""
        if not self._built:
            with self._lock:
                if not self._built:
                    self.build(app)
        found = self._by_route.get(id(route))
        if found is None:  # a route added after the first request
            template = str(getattr(route, "path_format", "") or "?")
            return template, rule_for(method, template)
        template, rules = found
        rule = rules.get(method)
        return template, rule if rule is not None else rule_for(method, template)
