"""OIDC settings: what the server accepts, and the one line it says for what it does not."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from opsloop.config import load_settings
from opsloop.errors import InvalidInput
from opsloop.governance.oidc_config import oidc_config


def _config(environ: dict[str, str] | None = None, **given: object):  # type: ignore[no-untyped-def]
    given = {"oidc_issuer": "https://idp.example.com/realms/ml/", "oidc_client_id": "opsloop",
             **given}  # fmt: skip
    settings = load_settings(**given)
    return oidc_config(settings, environ or {})


def test_settings_resolve_to_a_config_with_a_role_map() -> None:
    config = _config(
        {"IDP_SECRET": "s3"}, oidc_client_secret_env="IDP_SECRET",
        oidc_role_map="ml-admins=admin, ml-team=editor", oidc_role_claim="realm_access.roles",
        oidc_link_email="true",
    )  # fmt: skip
    assert config is not None
    assert config.issuer == "https://idp.example.com/realms/ml"  # no trailing slash
    assert (config.client_secret, config.link_email) == ("s3", True)
    assert config.provider_name == "idp.example.com"
    nested = {"realm_access": {"roles": ["ml-team", "ml-admins"]}}
    assert config.role_for(nested) == "admin"
    assert config.role_for({"realm_access": {"roles": ["other"]}}) == "viewer"
    assert config.role_for({"realm_access": {"roles": "ml-team"}}) == "editor"


def test_default_role_none_refuses_users_in_no_mapped_group() -> None:
    config = _config(oidc_role_map="ml-team=editor", oidc_default_role="none")
    assert config is not None
    assert config.role_for({"groups": ["elsewhere"]}) is None
    assert config.role_for({"groups": ["ml-team"]}) == "editor"


def test_no_issuer_no_oidc() -> None:
    assert oidc_config(load_settings(), {}) is None


@pytest.mark.parametrize(
    ("given", "words"),
    [
        ({"oidc_role_map": "ml-admins:admin"}, "is not GROUP=ROLE"),
        ({"oidc_role_map": "ml-admins=root"}, "unknown role 'root'"),
        ({"oidc_default_role": "superuser"}, "unknown role 'superuser'"),
        ({"oidc_client_secret_env": "NOT_SET_ANYWHERE"}, "NOT_SET_ANYWHERE, which is not set"),
        ({"oidc_client_id": ""}, "needs --oidc-client-id"),
    ],
)
def test_malformed_settings_say_what_to_fix(given: dict[str, str], words: str) -> None:
    with pytest.raises(InvalidInput, match=words):
        _config(**given)


def test_oidc_with_token_mode_is_refused() -> None:
    with pytest.raises(InvalidInput, match="use it with --auth users"):
        load_settings(auth="token", token="t", oidc_issuer="https://idp.example.com")
    assert load_settings(oidc_issuer="https://idp.example.com").auth_mode == "users"


def test_the_server_command_stops_on_a_bad_setting_in_one_line(tmp_path: Path) -> None:
    answer = subprocess.run(
        [str(Path(sys.executable).with_name("opsloop")), "server", "--auth", "users",
         "--database-url", f"sqlite:///{tmp_path / 'db.sqlite'}",
         "--oidc-issuer", "https://idp.example.com", "--oidc-client-id", "opsloop",
         "--oidc-role-map", "ml-admins=root"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "OPSLOOP_HOME": str(tmp_path / "home")},
    )  # fmt: skip
    assert answer.returncode == 2, answer.stderr
    assert answer.stderr.strip().splitlines() == [
        "error: unknown role 'root': use one of viewer, editor, maintainer, admin"
    ]
