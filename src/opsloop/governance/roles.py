"""Roles, their order, and the aliases only a maintainer may move.

A role holds in one workspace (roles are stored per ``(user, workspace)``; a user has one in
``default`` and may have others, :mod:`opsloop.governance.workspaces`). Each role can do what
the ones below it can::

    viewer      read everything
    editor      log runs, register versions, create datasets, prompts, monitors, scores ...
    maintainer  move protected aliases and labels (champion, production), deploy, roll out and
                back, and run code on the server (pipeline runs, reproduce, resume, triggers)
    admin       manage users, their roles and everyone's API keys
"""

from __future__ import annotations

from opsloop.config import DEFAULT_WORKSPACE
from opsloop.errors import InvalidInput
from opsloop.errors import PermissionDenied

__all__ = [
    "ADMIN",
    "DEFAULT_WORKSPACE",
    "EDITOR",
    "MAINTAINER",
    "PROTECTED_ALIASES",
    "ROLES",
    "VIEWER",
    "check_role",
    "lower_role",
    "rank",
    "require_role",
]

VIEWER, EDITOR, MAINTAINER, ADMIN = "viewer", "editor", "maintainer", "admin"
ROLES = (VIEWER, EDITOR, MAINTAINER, ADMIN)  # lowest first
_RANK = {role: i for i, role in enumerate(ROLES)}
# Aliases (models, datasets) and labels (prompts) whose move changes what production serves.
PROTECTED_ALIASES = frozenset({"champion", "production"})


def check_role(role: str) -> str:
    """``role`` if it is one of :data:`ROLES`; else ``InvalidInput`` listing them."""
    if role not in _RANK:
        raise InvalidInput(f"unknown role {role!r}: use one of {', '.join(ROLES)}")
    return role


def rank(role: str) -> int:
    """The role's place in :data:`ROLES` (viewer 0 ... admin 3)."""
    return _RANK[role]


def lower_role(a: str, b: str | None) -> str:
    """The lower of two roles (``b`` None: ``a``)."""
    return a if b is None or _RANK[a] <= _RANK[b] else b


def require_role(
    have: str, need: str, who: str, action: str, workspace: str = DEFAULT_WORKSPACE
) -> None:
    """``PermissionDenied`` naming the role ``action`` needs in ``workspace`` when ``have`` is
    below ``need``; ``details`` carry both, so the UI and scripts can tell a role problem from a
    bad key."""
    if _RANK[have] < _RANK[need]:
        raise PermissionDenied(
            f"{action} needs the role '{need}' in workspace '{workspace}'; {who} is '{have}'",
            details={"required_role": need, "role": have, "workspace": workspace},
        )
