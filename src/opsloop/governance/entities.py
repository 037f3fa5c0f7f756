"""The shapes governance returns and accepts, the same from SDK, REST and CLI.

A key's secret appears in exactly one shape, :class:`NewApiKey`, returned once by the call that
creates it; every other shape shows its ``prefix`` only.
"""

from __future__ import annotations

from pydantic import BaseModel
from pydantic import ConfigDict
from pydantic import Field

from opsloop.config import DEFAULT_WORKSPACE
from opsloop.kernel.entities import Entity

__all__ = [
    "ApiKey",
    "AuditEvent",
    "AuditFilter",
    "AuditPage",
    "AuditVerdict",
    "KeyCreate",
    "NewApiKey",
    "RoleSet",
    "User",
    "UserCreate",
    "Whoami",
    "Workspace",
    "WorkspaceCreate",
]


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="unique user name: letters, digits, '.', '_', '-', '@'")
    role: str = Field("viewer", description="role in the workspace: viewer, editor, ...")
    service: bool = Field(False, description="a service account (a machine), not a person")


class RoleSet(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: str
    workspace: str = Field(DEFAULT_WORKSPACE, description="where the role holds")


class User(Entity):
    id: str
    name: str
    role: str = Field(description="role in the workspace")
    workspace: str
    is_service: bool
    created_at: int
    created_by: str
    disabled_at: int | None = Field(
        None, description="epoch ms; set: the user's keys and sessions are refused"
    )


class KeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user: str | None = Field(None, description="whose key (default: the caller's own)")
    name: str = Field(description="what the key is for, e.g. 'github'")
    expires_in_s: int | None = Field(None, ge=60, le=10 * 365 * 86400)
    role: str | None = Field(
        None, description="cap the key below its user's role (a CI key that can only log)"
    )


class ApiKey(Entity):
    """A key as listings show it: never the secret, only its first characters."""

    id: str
    user: str
    name: str
    prefix: str
    role: str | None = None
    created_at: int
    created_by: str
    expires_at: int | None = None
    revoked_at: int | None = None


class NewApiKey(Entity):
    """A key just created: ``secret`` is shown here once and stored only as a hash."""

    key: ApiKey
    secret: str


class Whoami(Entity):
    name: str
    role: str
    auth: str = Field(description="users, token, open, or embedded (no server)")
    workspace: str
    is_service: bool = False
    server: str | None = None


class AuditEvent(Entity):
    """One state change: who did what to which resource, when, with what outcome.

    ``hash`` chains it to the event before (``prev_hash``): ``sha256(prev_hash + canonical
    JSON of the other fields)``, so an edited or deleted event breaks the chain."""

    seq: int = Field(description="position in the chain, 1, 2, 3 ... without gaps")
    at: int = Field(description="epoch ms")
    actor: str = Field(description="user name; 'token', 'anonymous', 'scheduler', ...")
    workspace: str
    action: str = Field(description="method and route template, e.g. 'POST /api/runs'")
    resource: str = Field(description="the path with its parameters, e.g. 'models/churn'")
    request_id: str = Field(description="the X-Request-Id answered to the request")
    outcome: int = Field(description="the HTTP status answered")
    digest: str | None = Field(None, description="SHA-256 of the request body, if read")
    prev_hash: str
    hash: str


class AuditFilter(Entity):
    """Which audit events a listing selects; every field narrows, None means any."""

    actor: str | None = Field(None, description="exactly this actor")
    resource: str | None = Field(None, description="a prefix: 'models/churn' and below")
    since: int | None = Field(None, description="at or after (epoch ms)")

    def query_params(self) -> dict[str, str | int]:
        """This filter as REST query parameters (the fields set)."""
        return self.model_dump(exclude_none=True)


class AuditPage(Entity):
    """Events newest first; pass ``next_page_token`` back for older ones."""

    items: list[AuditEvent]
    next_page_token: str | None = None


class AuditVerdict(Entity):
    """What ``audit verify`` found: ``ok``, or the first bad event and what is wrong with it."""

    ok: bool
    checked: int = Field(description="events read")
    first_bad_seq: int | None = None
    problem: str | None = None
    head_seq: int = 0
    head_hash: str = ""


class WorkspaceCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="lower-case letters, digits and '-', starting with a letter")


class Workspace(Entity):
    """A workspace: its objects live in a store of their own."""

    name: str
    created_at: int = Field(description="epoch ms (0: default, which was always there)")
    created_by: str
