"""The governance backend contract: users, roles, API keys and the audit log, local or remote.

:class:`~opsloop.governance.local.LocalGovernanceBackend` runs the services on a store opened
directly. There is no login there: whoever can open the database already holds everything in
it, so the caller acts as ``admin`` (this is how a server's first admin is made).
:class:`~opsloop.governance.remote.RemoteGovernanceBackend` calls the server, which acts for
the principal its key authenticates and checks that principal's role.

Contract: methods are thread-safe; returned entities are immutable (frozen pydantic models);
errors are ``OpsloopError`` subclasses, the same class whichever backend raised them; every
write is durable when the method returns. Beyond what each method names, any method may raise
``StoreError`` and, over HTTP, ``Unauthenticated`` (no key, or an unknown, expired or revoked
one) or ``PermissionDenied`` (a role too low: the message names the role needed).
"""

from __future__ import annotations

from abc import ABC
from abc import abstractmethod

from opsloop.governance.entities import ApiKey
from opsloop.governance.entities import AuditFilter
from opsloop.governance.entities import AuditPage
from opsloop.governance.entities import AuditVerdict
from opsloop.governance.entities import KeyCreate
from opsloop.governance.entities import NewApiKey
from opsloop.governance.entities import User
from opsloop.governance.entities import UserCreate
from opsloop.governance.entities import Whoami
from opsloop.governance.entities import Workspace
from opsloop.governance.key_limits import KeyLimitsChange
from opsloop.governance.key_limits import LimitedApiKey
from opsloop.governance.masking import MaskingPolicy
from opsloop.governance.masking import MaskingSet

__all__ = ["GovernanceBackend"]


class GovernanceBackend(ABC):
    """Users, roles and API keys. See the module docstring for the contract."""

    @abstractmethod
    def create_user(self, body: UserCreate) -> User:
        """Create a user or service account. ``InvalidInput`` for a malformed name or an
        unknown role, ``Conflict`` when the name is taken, ``PermissionDenied`` for a role
        above the caller's own."""

    @abstractmethod
    def list_users(self) -> list[User]:
        """Every user, by name."""

    @abstractmethod
    def set_role(self, name: str, role: str, workspace: str) -> User:
        """Give a user ``role`` in ``workspace``. ``InvalidInput`` for an unknown role,
        ``NotFound`` for an unknown user or workspace, ``PermissionDenied`` for a role above the
        caller's own or for taking the last admin's role away."""

    @abstractmethod
    def list_workspaces(self) -> list[Workspace]:
        """``default``, then every workspace made, by name."""

    @abstractmethod
    def create_workspace(self, name: str) -> Workspace:
        """Make a workspace (admins). ``InvalidInput`` for a name that cannot be one,
        ``Conflict`` when it exists, ``PermissionDenied`` below admin."""

    @abstractmethod
    def set_disabled(self, name: str, disabled: bool) -> User:
        """Disable a user (every key and session of theirs refused) or enable them again;
        twice is no error. ``NotFound`` for an unknown user (naming the closest),
        ``PermissionDenied`` below admin, ``Conflict`` for the last enabled admin."""

    @abstractmethod
    def create_key(self, body: KeyCreate) -> NewApiKey:
        """A new key; its secret is in the answer and nowhere else, ever. ``NotFound`` for an
        unknown user, ``PermissionDenied`` for another user's key (non-admins) or a key role
        above its user's."""

    @abstractmethod
    def list_keys(self, user: str | None = None) -> list[LimitedApiKey]:
        """The caller's keys, or ``user``'s (``"*"``: everyone's), without secrets, with
        their gateway limits."""

    @abstractmethod
    def revoke_key(self, key_id: str) -> ApiKey:
        """Revoke a key by id or listed prefix (again: no error). ``NotFound`` for no such
        key."""

    @abstractmethod
    def set_key_limits(self, key_id: str, change: KeyLimitsChange) -> LimitedApiKey:
        """Change a key's gateway limits (by id or listed prefix). ``InvalidInput`` for a
        change that changes nothing, ``NotFound`` for no such key, ``PermissionDenied`` below
        admin."""

    @abstractmethod
    def whoami(self) -> Whoami:
        """Who the caller is, with which role, under which auth mode."""

    @abstractmethod
    def list_audit(self, flt: AuditFilter, max_results: int, page_token: str | None) -> AuditPage:
        """One page of the audit events ``flt`` selects, newest first. ``InvalidInput`` for a
        forged page token; over HTTP in ``users`` mode ``PermissionDenied`` below admin."""

    @abstractmethod
    def verify_audit(self) -> AuditVerdict:
        """Walk the audit chain: ok, or the first bad event's ``seq`` and what is wrong."""

    @abstractmethod
    def get_masking(self) -> MaskingPolicy:
        """The workspace's masking at ingest per stream (over HTTP in ``users`` mode
        ``PermissionDenied`` below admin)."""

    @abstractmethod
    def set_masking(self, body: MaskingSet) -> MaskingPolicy:
        """Change the masking of the streams ``body`` names. ``InvalidInput`` for an unknown
        stream or entity; over HTTP in ``users`` mode ``PermissionDenied`` below admin."""
