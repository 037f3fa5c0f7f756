"""Governance's REST paths, written once (under ``/api``): ``api.py`` declares them and
``remote.py`` requests them."""

from __future__ import annotations

from opsloop.kernel.routes import Route

USERS = Route("/users")
USER = Route("/users/{name}")
USER_ROLE = Route("/users/{name}/role")
KEYS = Route("/keys")
KEY = Route("/keys/{key_id}")
WHOAMI = Route("/whoami")
AUDIT = Route("/audit")
AUDIT_VERIFY = Route("/audit/verify")
