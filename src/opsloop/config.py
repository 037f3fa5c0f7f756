"""Settings: where the store lives and which server to talk to.

Precedence, highest first: explicit arguments, ``OPSLOOP_*`` environment variables, an
``opsloop.toml`` in the working directory (or the file named by ``OPSLOOP_CONFIG``), then
``$OPSLOOP_HOME/opsloop.toml``, then defaults. The embedded default needs no configuration at
all: SQLite in WAL mode and a blob folder, both under ``~/.opsloop``.

Example ``opsloop.toml``::

    database_url = "postgresql://ml@db.internal/opsloop"
    blob_url = "s3://ml-artifacts/opsloop"
    server_url = "http://opsloop.internal:8080"   # SDK and CLI then talk to the server
    token = "..."                                  # sent as a bearer token / required by the server
    auth = "users"                                 # the server's auth mode (see Settings.auth)
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass
from dataclasses import field
from dataclasses import fields
from dataclasses import replace
from pathlib import Path
from typing import Any

from opsloop.errors import InvalidInput

__all__ = [
    "AUTH_MODES",
    "DEFAULT_LEADER_LEASE_SECONDS",
    "DEFAULT_WORKSPACE",
    "Settings",
    "check_workspace_name",
    "home_dir",
    "load_settings",
]

AUTH_MODES = ("token", "users")  # the server's auth modes (``Settings.auth``)
# How hard a commit waits for the disk (``PRAGMA synchronous`` in WAL mode). ``normal``, the
# default: a commit is in the OS before it returns, so it survives the death of the process
# (the durability the whole project promises, as the metric journal does), and the database
# stays consistent through a power loss, which may roll back the last commits. It costs no
# fsync per commit: 0.08 against 1.8 ms a commit on this project's CI disk, the largest part
# of a small write request (Rails 8 chose the same for SQLite in production). ``full`` syncs
# the WAL on every commit, so a commit also survives a power loss.
SQLITE_SYNC_LEVELS = ("normal", "full")
# How long a leader's lease lasts unrenewed (``Settings.leader_lease_seconds``): a killed leader
# is replaced within 4/3 of it (renewals every third), plus one tick. Shorter leases hand over
# sooner and cost a database write per lease every third of them on every server; under 1 s a
# leader's renewal, late by a GC pause on a loaded host, would hand the lease over for nothing.
DEFAULT_LEADER_LEASE_SECONDS = 10.0
LEADER_LEASE_LIMITS = (1.0, 3600.0)

_ENV_PREFIX = "OPSLOOP_"
DEFAULT_WORKSPACE = "default"
_WORKSPACE_NAME = re.compile(r"^[a-z][a-z0-9-]{0,39}$")


def check_workspace_name(name: str) -> str:
    """``name`` if it can name a workspace (lower-case letters, digits and dashes, starting
    with a letter, at most 40: it becomes part of a file or schema name); else InvalidInput."""
    if not isinstance(name, str) or not _WORKSPACE_NAME.match(name):
        raise InvalidInput(
            f"workspace {name!r}: use lower-case letters, digits and '-', starting with a "
            "letter, at most 40 characters"
        )
    return name


@dataclass(frozen=True)
class Settings:
    """Resolved settings; build one with :func:`load_settings`.

    Attributes:
        home: Folder for the embedded store and local caches.
        database_url: SQLAlchemy URL of the metadata store.
        blob_url: A local folder or an fsspec URL (``s3://bucket/prefix``) for blobs.
        server_url: When set, the SDK and CLI use the REST API instead of the store.
        token: Bearer token the client sends, and the server requires when it is set.
        metrics_token: A scrape token the server also accepts on ``/metrics`` (and nowhere
            else), so Prometheus needs no token that can read or write anything else.
        storage_options: Extra fsspec options for the blob store (endpoint_url, key, secret).
        auth: The server's auth mode: ``token`` (one shared token does everything; the
            default when a token is set), ``users`` (built-in users and service accounts with
            API keys and roles; a client sends its key as ``token``). Unset and no token: the
            server is open.
        oidc_*: OpenID Connect sign-in for ``users`` mode (setting ``oidc_issuer`` implies it):
            the provider's issuer URL, this server's client id, the name of the environment
            variable that holds the client secret (never the secret itself), the claim that
            carries groups and how groups map to roles (``ml-admins=admin,ml-team=editor``),
            the role of a user in no mapped group (``none`` refuses them), whether a first
            sign-in may take over an existing user named by the verified e-mail, the scopes to
            ask for, and the name the login button shows. Read by
            :mod:`opsloop.governance.oidc_config`.
        gateway_config: The LLM gateway's YAML file (``opsloop server --gateway-config``):
            its routes answer at ``/v1/chat/completions``; unset, the gateway serves no model.
        workspace: The workspace the SDK and CLI work in (``--workspace``,
            ``OPSLOOP_WORKSPACE``): each has its own store beside the root one
            (:mod:`opsloop.store.workspaces`); a client sends it to a server, which checks the
            caller's role there.
        allow_code: The modules a server may import when a request or a stored trigger,
            retraining policy or run names code (comma-separated dotted prefixes, ``opsloop
            server --allow-code``). A server in ``users`` mode imports nothing else, and no
            file path (see :mod:`opsloop.kernel.code_policy`); in the other modes, setting it
            restricts the server the same way.
        prediction_store: Where every serving replica seals its prediction log (an fsspec
            URL, read and written with ``storage_options``), so that monitors, rollouts and
            ``deployments predictions`` count every replica's rows. Unset: a ``predictions``
            prefix beside an object-store ``blob_url``, else this host alone; ``local``: this
            host alone. See :mod:`opsloop.serving.predlog_shared`.
        prediction_stream: A Redis URL (``redis://host:6379/0``): each prediction is added
            to a Redis Stream there before it is answered, so an acknowledged prediction
            survives the loss of its replica's disk (unset: it is in the replica's journal
            until the next seal, at most one seal interval).
        prediction_stream_key: The streams' key prefix on that Redis.
        sqlite_synchronous: How hard a commit to the embedded SQLite store waits for the disk:
            ``normal`` (the default: a commit survives the death of its process, and a power
            loss may roll back the last ones) or ``full`` (an fsync per commit: it also
            survives a power loss, at about 1.8 ms a write). See
            :data:`SQLITE_SYNC_LEVELS`.
        leader_lease_seconds: How long the lease of a job that one server of several runs
            (the rollout controllers, the scheduler) lasts unrenewed, 1 to 3600 s (default
            10): a killed leader is replaced within 4/3 of it. See
            :mod:`opsloop.store.leadership`.
    """

    home: Path
    database_url: str
    blob_url: str
    server_url: str | None = None
    token: str | None = None
    metrics_token: str | None = None
    storage_options: dict[str, Any] = field(default_factory=dict)
    auth: str | None = None
    oidc_issuer: str | None = None
    oidc_client_id: str | None = None
    oidc_client_secret_env: str | None = None
    oidc_role_claim: str = "groups"
    oidc_role_map: str | dict[str, str] | None = None
    oidc_default_role: str = "viewer"
    oidc_link_email: bool | str = False
    oidc_scopes: str = "openid email profile"
    oidc_provider_name: str | None = None
    gateway_config: str | None = None
    allow_code: str | None = None
    prediction_store: str | None = None
    prediction_stream: str | None = None
    prediction_stream_key: str = "opsloop:predlog"
    workspace: str = DEFAULT_WORKSPACE
    sqlite_synchronous: str = "normal"
    leader_lease_seconds: float = DEFAULT_LEADER_LEASE_SECONDS

    def __post_init__(self) -> None:
        check_workspace_name(self.workspace)
        # From the environment or a TOML string it is text: a number of seconds, or an error.
        object.__setattr__(self, "leader_lease_seconds", _lease_seconds(self.leader_lease_seconds))
        if self.sqlite_synchronous not in SQLITE_SYNC_LEVELS:
            raise InvalidInput(
                f"unknown sqlite_synchronous {self.sqlite_synchronous!r}: use "
                f"{' or '.join(SQLITE_SYNC_LEVELS)}"
            )
        if self.auth is not None and self.auth not in AUTH_MODES:
            raise InvalidInput(
                f"unknown auth mode {self.auth!r}: use one of {', '.join(AUTH_MODES)} "
                "(OIDC sign-in is users mode with --oidc-issuer set)"
            )
        if self.oidc_issuer and self.auth == "token":
            raise InvalidInput("--oidc-issuer signs users in: use it with --auth users")

    @property
    def auth_mode(self) -> str:
        """What the server asks of callers: ``users``, ``token``, or ``open`` (no auth)."""
        if self.auth is not None:
            return self.auth
        if self.oidc_issuer:
            return "users"
        return "token" if self.token else "open"

    @property
    def predictions_folder(self) -> Path:
        """This home's prediction log: what ``serve`` writes and a monitor's check reads."""
        return self.home / "predictions"

    @property
    def is_remote(self) -> bool:
        """True when the SDK should talk to a server rather than to the store directly."""
        return bool(self.server_url)

    def with_overrides(self, **overrides: Any) -> Settings:
        """A copy with the given non-None fields replaced."""
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})


def _lease_seconds(value: Any) -> float:
    low, high = LEADER_LEASE_LIMITS
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = float("nan")
    if isinstance(value, bool) or not low <= seconds <= high:  # NaN fails both comparisons
        raise InvalidInput(
            f"leader_lease_seconds is a number of seconds from {low:g} to {high:g}, not {value!r}"
        )
    return seconds


def home_dir() -> Path:
    """``$OPSLOOP_HOME``, else ``~/.opsloop``: the embedded store's folder and local caches."""
    return Path(os.environ.get("OPSLOOP_HOME") or Path.home() / ".opsloop").expanduser()


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        return {}
    except tomllib.TOMLDecodeError as exc:
        raise InvalidInput(f"{path} is not valid TOML: {exc}") from exc


def load_settings(**overrides: Any) -> Settings:
    """Resolve settings from arguments, environment and ``opsloop.toml`` files.

    Raises:
        InvalidInput: A config file is not valid TOML or names an unknown setting.
    """
    env = os.environ
    home = Path(overrides["home"]).expanduser() if overrides.get("home") else home_dir()
    layers: list[dict[str, Any]] = [_read_toml(home / "opsloop.toml")]
    local = env.get("OPSLOOP_CONFIG") or "opsloop.toml"
    layers.append(_read_toml(Path(local)))
    known = {f.name for f in fields(Settings)}
    merged: dict[str, Any] = {}
    for layer in layers:
        unknown = set(layer) - known
        if unknown:
            raise InvalidInput(
                f"unknown setting(s) {sorted(unknown)} in opsloop.toml; known: {sorted(known)}"
            )
        merged.update(layer)
    for name in known - {"home", "storage_options"}:
        value = env.get(_ENV_PREFIX + name.upper())
        if value:
            merged[name] = value
    merged.update({k: v for k, v in overrides.items() if v is not None})
    merged["home"] = home
    merged.setdefault("database_url", f"sqlite:///{home / 'opsloop.db'}")
    merged.setdefault("blob_url", str(home / "blobs"))
    return Settings(**merged)
