"""OpenID Connect sign-in settings, checked once when the server starts.

The server's settings (``Settings.oidc_*``: flags, ``OPSLOOP_OIDC_*`` variables or
``opsloop.toml``) are strings; :func:`oidc_config` turns them into an :class:`OidcConfig` or says,
in one line, what is wrong: a role map entry that is not ``group=role``, an unknown role, a
client secret variable that is not set. The secret itself is read from the environment variable
the settings name, so it never sits in a config file or a process's command line.

Roles come from one claim of the ID token (``groups`` by default; a dotted path such as
``realm_access.roles`` reaches into an object, as Keycloak nests realm roles): a user gets the
highest role any of their groups maps to, else ``default_role``; ``default_role = "none"``
refuses a user in no mapped group.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from opsloop.config import Settings
from opsloop.errors import InvalidInput
from opsloop.governance.roles import check_role
from opsloop.governance.roles import rank

__all__ = ["NO_ROLE", "OidcConfig", "oidc_config"]

NO_ROLE = "none"  # default_role that refuses users in no mapped group
_TRUE = {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class OidcConfig:
    """Resolved OIDC settings (see the module docstring)."""

    issuer: str
    client_id: str
    client_secret: str | None
    role_claim: str = "groups"
    role_map: tuple[tuple[str, str], ...] = ()
    default_role: str = "viewer"
    link_email: bool = False
    scopes: str = "openid email profile"
    provider_name: str = "SSO"

    def role_for(self, claims: dict[str, Any]) -> str | None:
        """The role ``claims`` earn: the highest mapped group's, else the default (None when
        the default is ``none``)."""
        groups = _claim(claims, self.role_claim)
        values = {groups} if isinstance(groups, str) else set(map(str, groups or ()))
        mapped = [role for group, role in self.role_map if group in values]
        if mapped:
            return max(mapped, key=rank)
        return None if self.default_role == NO_ROLE else self.default_role


def _claim(claims: dict[str, Any], path: str) -> Any:
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value if isinstance(value, str | list | tuple) else None


def _role_map(given: str | dict[str, str] | None) -> tuple[tuple[str, str], ...]:
    if not given:
        return ()
    if isinstance(given, dict):
        pairs = [(str(k), str(v)) for k, v in given.items()]
    else:
        pairs = []
        for entry in filter(None, (e.strip() for e in given.split(","))):
            group, sep, role = entry.rpartition("=")
            if not sep or not group.strip() or not role.strip():
                raise InvalidInput(
                    f"--oidc-role-map entry {entry[:100]!r} is not GROUP=ROLE "
                    "(e.g. 'ml-admins=admin,ml-team=editor')"
                )
            pairs.append((group.strip(), role.strip()))
    return tuple((group, check_role(role)) for group, role in pairs)


def oidc_config(settings: Settings, environ: dict[str, str] | None = None) -> OidcConfig | None:
    """The OIDC settings of ``settings``; None when ``oidc_issuer`` is not set.

    Raises:
        InvalidInput: An issuer that is not an http(s) URL, no client id, a client secret
            variable that is not set, a malformed role map, or an unknown role.
    """
    if not settings.oidc_issuer:
        return None
    env = os.environ if environ is None else environ
    issuer = settings.oidc_issuer.strip().rstrip("/")
    parts = urlsplit(issuer)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput(f"--oidc-issuer must be an https URL, got {issuer[:200]!r}")
    if not settings.oidc_client_id:
        raise InvalidInput("--oidc-issuer needs --oidc-client-id (this server's client id)")
    secret = None
    if settings.oidc_client_secret_env:
        secret = env.get(settings.oidc_client_secret_env)
        if not secret:
            raise InvalidInput(
                f"--oidc-client-secret-env names {settings.oidc_client_secret_env}, "
                "which is not set: export it with the client secret"
            )
    default = settings.oidc_default_role.strip()
    if default != NO_ROLE:
        check_role(default)
    link = settings.oidc_link_email
    return OidcConfig(
        issuer=issuer,
        client_id=settings.oidc_client_id,
        client_secret=secret,
        role_claim=settings.oidc_role_claim.strip() or "groups",
        role_map=_role_map(settings.oidc_role_map),
        default_role=default,
        link_email=link if isinstance(link, bool) else link.strip().lower() in _TRUE,
        scopes=settings.oidc_scopes,
        provider_name=settings.oidc_provider_name or parts.hostname,
    )
