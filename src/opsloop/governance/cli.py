"""``opsloop users ...``, ``opsloop keys ...``, ``opsloop audit ...`` and ``opsloop whoami``.

Without a server URL these run on the database directly, as its owner: that is how a server's
first admin is made, on the server's machine, with ``OPSLOOP_DATABASE_URL`` set to the server's
store: ``opsloop users create admin --role admin``, then ``opsloop keys create --user admin
--name laptop``. With a server URL they ask the server, with the caller's key (``OPSLOOP_TOKEN``)
and within the caller's role.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Annotated
from typing import Any
from typing import Literal
from typing import cast

import typer

from opsloop.console.commands import JsonOption
from opsloop.console.commands import command_group
from opsloop.console.output import command_client
from opsloop.console.output import print_json
from opsloop.console.output import print_listing
from opsloop.console.output import print_outcome
from opsloop.console.output import print_table
from opsloop.console.output import when

if TYPE_CHECKING:
    from opsloop.governance.sdk import GovernanceClient

users_app = command_group(
    "Users and service accounts of a shared server, with their role (viewer, editor, "
    "maintainer, admin). Examples:\n\n"
    "  opsloop users create alice --role editor\n"
    "  opsloop users create ci-bot --role editor --service\n"
    "  opsloop users set-role alice maintainer\n"
    "  opsloop users disable alice\n"
    "  opsloop users list"
)
keys_app = command_group(
    "API keys: a user's credential for the SDK, the CLI (OPSLOOP_TOKEN) and the web UI's sign-in. "
    "A key is shown once, when created, and stored hashed. Examples:\n\n"
    "  opsloop keys create --user ci-bot --name github --expires 30d\n"
    "  opsloop keys list --user ci-bot\n"
    "  opsloop keys limit opsk_AbC1234 --rpm 60 --tpm 20000 --budget 5 --per day\n"
    "  opsloop keys revoke opsk_AbC1234"
)

workspaces_app = command_group(
    "Workspaces: separate sets of experiments, data, models, prompts and deployments, each in a "
    "store of its own, with a role per user in each. Work in one with --workspace NAME (or "
    "OPSLOOP_WORKSPACE). Examples:\n\n"
    "  opsloop workspaces create team-a\n"
    "  opsloop users set-role alice editor --workspace team-a\n"
    "  opsloop --workspace team-a runs list\n"
    "  opsloop workspaces list"
)

audit_app = command_group(
    "The audit log: every state change made through the server (who, what, when, outcome), "
    "hash-chained so an edited or deleted event is detected. Examples:\n\n"
    "  opsloop audit verify\n"
    "  opsloop audit list --actor alice --resource models/churn --since 7d\n"
    "  opsloop audit export --out audit.jsonl"
)

_DURATION = re.compile(r"(\d{1,6})([mhdw])")
_UNIT_S = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(text: str) -> int:
    """``90m``, ``12h``, ``30d`` or ``8w`` as seconds; ``InvalidInput`` otherwise."""
    from opsloop.errors import InvalidInput

    found = _DURATION.fullmatch(text.strip())
    if found is None:
        raise InvalidInput(f"--expires takes a number and m, h, d or w (e.g. 30d), got {text!r}")
    return int(found.group(1)) * _UNIT_S[found.group(2)]


def audit_since(text: str) -> int:
    """``--since`` as epoch ms (see :func:`opsloop.governance.audit.parse_since`)."""
    from opsloop.governance.audit import parse_since

    return parse_since(text)


def _governance() -> GovernanceClient:
    client: GovernanceClient = command_client().governance
    return client


@users_app.command("create")
def create_user(
    name: str,
    role: Annotated[str, typer.Option(help="viewer, editor, maintainer or admin.")] = "viewer",
    service: Annotated[bool, typer.Option(help="A service account (a machine).")] = False,
    json_: JsonOption = False,
) -> None:
    """Create a user (or, with --service, a service account) with a role."""
    user = _governance().create_user(name, role=role, service=service)
    kind = "service account" if user.is_service else "user"
    print_outcome(user, f"created {kind} {user.name} ({user.role})", as_json=json_)


@users_app.command("set-role")
def set_role(
    name: str,
    role: str,
    workspace: Annotated[
        str, typer.Option(help="The workspace the role holds in (each has its own).")
    ] = "default",
    json_: JsonOption = False,
) -> None:
    """Give a user a role (in the default workspace, or in --workspace)."""
    user = _governance().set_role(name, role, workspace=workspace)
    print_outcome(user, f"{user.name} is now {user.role} in {user.workspace}", as_json=json_)


@workspaces_app.command("create")
def create_workspace(name: str, json_: JsonOption = False) -> None:
    """Make a workspace (admins); then give people a role in it with `users set-role`."""
    made = _governance().create_workspace(name)
    print_outcome(
        made, f"created workspace {made.name}: work in it with --workspace {made.name}",
        as_json=json_,
    )  # fmt: skip


@workspaces_app.command("list")
def list_workspaces(json_: JsonOption = False) -> None:
    """Every workspace: default, then the ones made."""
    found = _governance().list_workspaces()
    rows = [(w.name, when(w.created_at) if w.created_at else "", w.created_by) for w in found]
    print_listing(found, ["workspace", "created", "by"], rows, as_json=json_)


@users_app.command("list")
def list_users(json_: JsonOption = False) -> None:
    """Every user and service account with its role, and whether it is disabled."""
    users = _governance().list_users()
    if json_:
        print_json(users)
        return
    rows = [(u.name, u.role, "service" if u.is_service else "user", when(u.created_at),
             u.created_by, "disabled " + when(u.disabled_at) if u.disabled_at else "active")
            for u in users]  # fmt: skip
    print_table(["name", "role", "kind", "created", "by", "state"], rows, cut=True)


UserArgument = Annotated[str, typer.Argument(help="The user's name, as `users list` shows it.")]


@users_app.command("disable")
def disable_user(name: UserArgument, json_: JsonOption = False) -> None:
    """Refuse every API key and web session of a user from the next request on (admins).

    Nothing is deleted: their history, role and keys stay, and `opsloop users enable NAME`
    gives it all back. The last enabled admin cannot be disabled."""
    user = _governance().disable_user(name)
    line = f"{user.name} is disabled: its keys and sessions are refused"
    print_outcome(user, line, as_json=json_)


@users_app.command("enable")
def enable_user(name: UserArgument, json_: JsonOption = False) -> None:
    """Let a disabled user's API keys and web sessions in again (admins)."""
    user = _governance().enable_user(name)
    print_outcome(user, f"{user.name} is enabled ({user.role})", as_json=json_)


@keys_app.command("create")
def create_key(
    name: Annotated[str, typer.Option(help="What the key is for, e.g. github.")],
    user: Annotated[str | None, typer.Option(help="Whose key (default: your own).")] = None,
    expires: Annotated[str | None, typer.Option(help="Expire after 90m, 12h, 30d, 8w.")] = None,
    role: Annotated[
        str | None, typer.Option(help="Cap the key below its user's role (e.g. viewer).")
    ] = None,
    json_: JsonOption = False,
) -> None:
    """Create an API key and print it, this once: it is stored only as a hash."""
    expires_in_s = parse_duration(expires) if expires else None
    new = _governance().create_key(name, user=user, expires_in_s=expires_in_s, role=role)
    if json_:
        print_json(new)
        return
    typer.echo(new.secret)
    until = f", expires {when(new.key.expires_at)} UTC" if new.key.expires_at else ""
    typer.echo(
        f"key {new.key.id} ({new.key.prefix}...) for {new.key.user}{until}: shown once, "
        "store it now (e.g. as OPSLOOP_TOKEN)",
        err=True,
    )


@keys_app.command("list")
def list_keys(
    user: Annotated[
        str | None, typer.Option(help="Whose keys ('*': everyone's; default: your own).")
    ] = None,
    json_: JsonOption = False,
) -> None:
    """API keys by prefix (never the secret), newest first."""
    keys = _governance().list_keys(user)
    if json_:
        print_json(keys)
        return
    rows = [
        (k.id, k.prefix + "...", k.user, k.name, k.role or "", k.limits.summary(),
         when(k.created_at), when(k.expires_at),
         "revoked " + when(k.revoked_at) if k.revoked_at else "active")
        for k in keys
    ]  # fmt: skip
    columns = ["id", "prefix", "user", "name", "role cap", "limits", "created", "expires", "state"]
    print_table(columns, rows, cut=True)


@keys_app.command("revoke")
def revoke_key(
    key: Annotated[str, typer.Argument(help="The key's id, or the prefix `keys list` shows.")],
) -> None:
    """Revoke an API key: it is refused from the next request on."""
    revoked = _governance().revoke_key(key.removesuffix("..."))
    typer.echo(f"revoked key {revoked.id} ({revoked.prefix}...) of {revoked.user}")


def _number(text: str | None, flag: str, kind: type[int] | type[float]) -> Any:
    """``--rpm``, ``--tpm`` and ``--budget`` read here, not by Click, so a bad value is one
    line that names the option."""
    from opsloop.errors import InvalidInput

    if text is None:
        return None
    try:
        return kind(text)
    except ValueError:
        what = "a whole number" if kind is int else "an amount in USD"
        raise InvalidInput(f"{flag} takes {what}, got {text!r}") from None


@keys_app.command("limit")
def limit_key(
    key: Annotated[str, typer.Argument(help="The key's id, or the prefix `keys list` shows.")],
    rpm: Annotated[str | None, typer.Option(metavar="N", help="Requests per minute.")] = None,
    tpm: Annotated[
        str | None, typer.Option(metavar="N", help="Tokens (prompt and answer) per minute.")
    ] = None,
    budget: Annotated[
        str | None, typer.Option(metavar="USD", help="Spend per period, in USD.")
    ] = None,
    per: Annotated[
        str | None, typer.Option(help="The budget's period: day or month (UTC; default month).")
    ] = None,
    clear: Annotated[
        bool, typer.Option(help="Remove every limit first (then set the ones given).")
    ] = False,
    json_: JsonOption = False,
) -> None:
    """Limit what a key may use through the LLM gateway (admins). A call over a limit gets a
    429 with the time to retry; limits not named stay as they are. Examples:

      opsloop keys limit opsk_AbC1234 --rpm 60 --tpm 20000
      opsloop keys limit opsk_AbC1234 --budget 5 --per day
      opsloop keys limit opsk_AbC1234 --clear
    """
    from opsloop.errors import InvalidInput

    if per is not None and per not in ("day", "month"):
        raise InvalidInput(f"--per takes day or month, got {per!r}")
    if not clear and rpm is None and tpm is None and budget is None and per is None:
        raise InvalidInput("nothing to change: give --rpm, --tpm, --budget (--per) or --clear")
    period = cast(Literal["day", "month"] | None, per)  # checked above
    limited = _governance().set_key_limits(
        key.removesuffix("..."), rpm=_number(rpm, "--rpm", int), tpm=_number(tpm, "--tpm", int),
        budget_usd=_number(budget, "--budget", float), budget_period=period, clear=clear,
    )  # fmt: skip
    if json_:
        print_json(limited)
        return
    summary = limited.limits.summary()
    now = "no limits" if summary == "-" else summary
    typer.echo(f"key {limited.id} ({limited.prefix}...) of {limited.user}: {now}")


def whoami(json_: JsonOption = False) -> None:
    """Who you are to the server (or the embedded store): name, role and auth mode."""
    me = command_client().governance.whoami()
    if json_:
        print_json(me)
        return
    where = me.server or "the embedded store"
    kind = " (service account)" if me.is_service else ""
    typer.echo(f"{me.name}{kind}: {me.role} in workspace {me.workspace}, auth {me.auth} on {where}")


ActorOption = Annotated[str | None, typer.Option(help="Only this user (or scheduler, token).")]
ResourceOption = Annotated[
    str | None, typer.Option(help="Only resources under this path, e.g. models/churn.")
]
SinceOption = Annotated[
    str | None, typer.Option(help="Only events since 7d, 12h, ... or an ISO date (UTC).")
]


@audit_app.command("verify")
def verify_audit(json_: JsonOption = False) -> None:
    """Walk the hash chain; exit 1 naming the first edited or deleted event."""
    verdict = _governance().verify_audit()
    if json_:
        print_json(verdict)
    elif verdict.ok:
        typer.echo(f"ok: {verdict.checked} events, head {verdict.head_seq} {verdict.head_hash}")
    else:
        typer.echo(f"TAMPERED at event {verdict.first_bad_seq}: {verdict.problem}", err=True)
    if not verdict.ok:
        raise typer.Exit(1)


@audit_app.command("list")
def list_audit(
    actor: ActorOption = None,
    resource: ResourceOption = None,
    since: SinceOption = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="At most this many.")] = 50,
    json_: JsonOption = False,
) -> None:
    """Audit events, newest first."""
    page = _governance().list_audit(
        actor=actor, resource=resource, since=audit_since(since) if since else None,
        max_results=limit,
    )  # fmt: skip
    if json_:
        print_json(page.items)
        return
    rows = [(e.seq, when(e.at), e.actor, e.action, e.resource, e.outcome, e.request_id[:8])
            for e in page.items]  # fmt: skip
    print_table(["seq", "at", "actor", "action", "resource", "outcome", "request"], rows, cut=True)


@audit_app.command("export")
def export_audit(
    out: Annotated[Path | None, typer.Option(help="Write here (default: stdout).")] = None,
    actor: ActorOption = None,
    resource: ResourceOption = None,
    since: SinceOption = None,
) -> None:
    """Events as JSON Lines, oldest first, with their hashes (to verify or archive)."""
    events = list(_governance().iter_audit(
        actor=actor, resource=resource, since=audit_since(since) if since else None
    ))  # fmt: skip
    lines = "".join(e.model_dump_json() + "\n" for e in reversed(events))
    if out is None:
        sys.stdout.write(lines)
    else:
        out.write_text(lines, encoding="utf-8")
        typer.echo(f"wrote {len(events)} events to {out}", err=True)
