"""Workspaces: which exist, and making one.

``default`` always exists (it is the root store itself); every other one is a row of
``workspaces`` in the root store, made by an admin before anyone works in it, so that a
mistyped ``--workspace`` is a NotFound naming the close ones, never a new empty store. Its
objects live in a store of their own (:mod:`opsloop.store.workspaces`): on PostgreSQL the
schema is made here, in the same transaction as the row; a SQLite file is made when first
opened.
"""

from __future__ import annotations

import difflib

from sqlalchemy import select
from sqlalchemy import text
from sqlalchemy.orm import Session

from opsloop.config import DEFAULT_WORKSPACE
from opsloop.config import check_workspace_name
from opsloop.errors import Conflict
from opsloop.errors import NotFound
from opsloop.governance.entities import Workspace
from opsloop.governance.roles import ADMIN
from opsloop.governance.roles import require_role
from opsloop.governance.tables import UserRoleRow
from opsloop.governance.tables import WorkspaceRow
from opsloop.kernel.identity import Principal
from opsloop.kernel.timeutil import now_ms
from opsloop.store.workspaces import workspace_schema

__all__ = ["DEFAULT", "create_workspace", "get_workspace", "list_workspaces"]

DEFAULT = Workspace(name=DEFAULT_WORKSPACE, created_at=0, created_by="opsloop")


def list_workspaces(session: Session) -> list[Workspace]:
    """``default``, then every workspace made, by name."""
    rows = session.scalars(select(WorkspaceRow).order_by(WorkspaceRow.name)).all()
    return [DEFAULT, *(_workspace(row) for row in rows)]


def get_workspace(session: Session, name: str) -> Workspace:
    """The workspace ``name``; ``NotFound`` naming the closest ones when there is none."""
    if name == DEFAULT_WORKSPACE:
        return DEFAULT
    row = session.get(WorkspaceRow, name)
    if row is None:
        names = [w.name for w in list_workspaces(session)]
        near = difflib.get_close_matches(str(name), names, n=1)
        hint = f"did you mean {near[0]!r}? " if near else ""
        raise NotFound(
            f"workspace {str(name)[:64]!r} does not exist: {hint}an admin makes one with "
            "`opsloop workspaces create NAME`"
        )
    return _workspace(row)


def create_workspace(session: Session, name: str, actor: Principal) -> Workspace:
    """Make the workspace ``name`` (an admin's act); its maker is its first admin.

    Raises:
        InvalidInput: A name that cannot name a workspace.
        PermissionDenied: The actor is not an admin.
        Conflict: It exists.
    """
    check_workspace_name(name)
    require_role(actor.role, ADMIN, actor.name, "making a workspace")
    if name == DEFAULT_WORKSPACE or session.get(WorkspaceRow, name) is not None:
        raise Conflict(f"workspace {name!r} already exists")
    row = WorkspaceRow(name=name, created_at=now_ms(), created_by=actor.name)
    session.add(row)
    if actor.user_id:  # its maker administers it (and grants the others their roles there)
        session.add(UserRoleRow(user_id=actor.user_id, workspace=name, role=ADMIN,
                                granted_at=row.created_at, granted_by=actor.name))  # fmt: skip
    session.flush()
    bind = session.get_bind()
    if bind.dialect.name == "postgresql":
        url = bind.url.render_as_string(hide_password=False)
        session.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{workspace_schema(url, name)}"'))
    return _workspace(row)


def _workspace(row: WorkspaceRow) -> Workspace:
    return Workspace(name=row.name, created_at=row.created_at, created_by=row.created_by)
