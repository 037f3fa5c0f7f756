"""Every route of the app has a required role (or is one of the few public ones), and every
explicit rule names a route that exists: a renamed route cannot silently lose its mark."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.routing import iter_route_contexts

from opsloop.governance.policy import RULES
from opsloop.governance.policy import RouteRoles
from opsloop.governance.policy import rule_for
from opsloop.governance.roles import PROTECTED_ALIASES
from opsloop.governance.roles import ROLES
from opsloop.web.deps import require_metrics_token
from opsloop.web.deps import require_token

# Routes that answer without the auth check: health, the login form, signing out.
PUBLIC = {
    ("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/login"), ("POST", "/login"),
    ("POST", "/logout"),
}  # fmt: skip


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> FastAPI:
    from opsloop.app.server import create_app
    from opsloop.config import load_settings

    home = tmp_path_factory.mktemp("roles")
    settings = load_settings(home=str(home), database_url=f"sqlite:///{home / 'db'}",
                             blob_url=str(home / "blobs"), auth="users")  # fmt: skip
    built = create_app(settings)
    yield built
    built.state.opsloop.store.dispose()


def _guards(context) -> set:  # type: ignore[no-untyped-def]
    calls, stack = set(), list(context.dependant.dependencies)
    while stack:
        dep = stack.pop()
        calls.add(dep.call)
        stack.extend(dep.dependencies)
    return calls


def test_every_route_is_guarded_and_resolves_to_a_role(app: FastAPI) -> None:
    seen = set()
    for context in iter_route_contexts(app.routes):
        if not isinstance(context.original_route, APIRoute):
            continue
        for method in context.methods:
            key = (method, context.path_format)
            seen.add(key)
            if key in PUBLIC:
                continue
            assert _guards(context) & {require_token, require_metrics_token}, f"{key} is open"
            assert rule_for(*key).role in ROLES
    assert len(seen) > 150  # the walk saw the whole app, REST, protocol and page routes
    entries = RouteRoles().entries(app)
    assert {(m, t) for m, t, _ in entries} == seen
    assert {r.role for _, _, r in entries} == set(ROLES)  # each role guards something


def test_every_rule_names_a_route_of_the_app(app: FastAPI) -> None:
    routes = {(m, t) for m, t, _ in RouteRoles().entries(app)}
    assert set(RULES) - routes == set()


def test_the_routes_the_issue_names_need_maintainer(app: FastAPI) -> None:
    maintainer = {("POST", "/api/pipelines/runs"), ("POST", "/api/pipelines/runs/{run_id}/resume"),
                  ("POST", "/api/pipelines/runs/{run_id}/reproduce"),
                  ("POST", "/api/triggers/{name}/fire"), ("POST", "/api/deployments"),
                  ("POST", "/api/deployments/{name}/rollouts"),
                  ("POST", "/api/deployments/{name}/rollback")}  # fmt: skip
    for key in maintainer:
        assert rule_for(*key).role == "maintainer", key
    alias = rule_for("PUT", "/api/models/{name}/aliases/{alias}")
    assert alias.needs({"alias": "champion"}) == ("maintainer", "champion")
    assert alias.needs({"alias": "staging"}) == ("editor", None)
    assert {"champion", "production"} <= PROTECTED_ALIASES
    assert rule_for("GET", "/api/anything").role == "viewer"
    assert rule_for("DELETE", "/api/anything").role == "editor"


def test_the_architecture_page_shows_governance_on_its_floor() -> None:
    page = (Path(__file__).parents[2] / "docs" / "architecture.md").read_text()
    floors = page[page.index("```") : page.index("```", page.index("```") + 3)]
    assert floors.index("evaluation") < floors.index("governance") < floors.index("web · console")
