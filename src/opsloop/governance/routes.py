"""Governance's REST paths, written once (under ``/api``): ``api.py`` declares them and
``remote.py`` requests them."""

from __future__ import annotations

from opsloop.kernel.routes import Route

USERS = Route("/users")
USER = Route("/users/{name}")
USER_ROLE = Route("/users/{name}/role")
USER_DISABLE = Route("/users/{name}/disable")
USER_ENABLE = Route("/users/{name}/enable")
KEYS = Route("/keys")
KEY = Route("/keys/{key_id}")
KEY_LIMITS = Route("/keys/{key_id}/limits")
WHOAMI = Route("/whoami")
WORKSPACES = Route("/workspaces")
AUDIT = Route("/audit")
AUDIT_VERIFY = Route("/audit/verify")
# the CLI's OpenID sign-in (opsloop login --oidc): open routes, served with OIDC only
OIDC_SIGN_IN = Route("/auth/oidc")
OIDC_DEVICE = Route("/auth/oidc/device")
OIDC_TOKEN = Route("/auth/oidc/token")
# Global: these act on the root store whatever workspace a request names (users, keys and
# the list of workspaces are not any one workspace's).
GLOBAL = (USERS, KEYS, WHOAMI, WORKSPACES, OIDC_SIGN_IN)
