"""``opsloop gateway-routes``: the gateway's routes, their live rollout share, each route's
history, and a maintainer's override of a rollout.

It reads the store the gateways write (this machine's, or the server's over REST when
``OPSLOOP_SERVER_URL`` is set), so it shows what every gateway in front of that store does.
"""

from __future__ import annotations

from typing import Annotated
from typing import Any

import typer

from opsloop.console.commands import JsonOption
from opsloop.console.commands import command_group
from opsloop.console.output import command_client
from opsloop.console.output import console
from opsloop.console.output import print_json
from opsloop.console.output import print_listing
from opsloop.console.output import print_table
from opsloop.console.output import when

__all__ = ["routes_app"]

routes_app = command_group(
    "The LLM gateway's routes and their rollouts (canary or A/B between two targets, judged on "
    "the candidate's error rate, p95 latency and scores; rolled back by itself when a judgment "
    "fails). A route's rollout is declared in gateway.yaml (docs/gateway.md):\n\n"
    "  rollout: {baseline: old, candidate: new, steps: [5, 25, 50, 100], interval_s: 300,\n"
    "            judge: {max_error_rate: 0.02, max_p95_latency_ms: 4000, min_calls: 50}}\n\n"
    "Examples:\n\n"
    "  opsloop gateway-routes list\n\n"
    "  opsloop gateway-routes history gpt-4o-mini --json\n\n"
    "  opsloop gateway-routes rollout gpt-4o-mini --rollback --reason 'answers too long'"
)


class _Routes:
    """The store here, or the server's routes under /api/gateway."""

    def __init__(self) -> None:
        settings = command_client().settings
        self.http: Any = None
        if settings.is_remote:
            from opsloop.kernel.transport import HttpTransport

            self.http = HttpTransport(str(settings.server_url), settings.token)
        else:
            from opsloop.client import shared_stores

            self.store = shared_stores(settings)[0]

    def routes(self) -> list[Any]:
        from opsloop.llm.gateway import rollout_state as state

        if self.http is not None:
            return [state.RouteState(**r) for r in self.http.json("GET", "/api/gateway/routes")]
        with self.store.read() as session:
            return state.list_routes(session)

    def history(self, route: str) -> list[Any]:
        from urllib.parse import quote

        from opsloop.llm.gateway import rollout_state as state

        if self.http is not None:
            found = self.http.json("GET", f"/api/gateway/routes/{quote(route, safe='')}/history")
            return [state.HistoryEntry(**h) for h in found]
        with self.store.read() as session:
            return state.history(session, route)

    def override(self, route: str, action: str, reason: str | None) -> Any:
        from urllib.parse import quote

        from opsloop.kernel.identity import current_user
        from opsloop.kernel.timeutil import now_ms
        from opsloop.llm.gateway import rollout_state as state

        if self.http is not None:
            path = f"/api/gateway/routes/{quote(route, safe='')}/rollout"
            body = {"action": action, "reason": reason}
            return state.RouteState(**self.http.json("POST", path, json=body, idempotent=False))
        with self.store.write() as session:
            return state.override(session, route, action, current_user(), reason, now_ms())  # type: ignore[arg-type]


def _share(route: Any) -> str:
    if route.candidate is None:
        return ""
    return f"{route.candidate} {route.share:g}% ({route.mode}, {route.status})"


@routes_app.command("list")
def list_routes(json_: JsonOption = False) -> None:
    """Every route a gateway on this store has served: its targets and weights, and while it
    has a rollout, the candidate's live share of the pair's traffic, its state (running,
    paused, promoted, rolled_back) and the latest judgment."""
    found = _Routes().routes()
    if json_:
        print_json(found)
        return
    rows = []
    for r in found:
        targets = ", ".join(f"{t['name']} x{t['weight']:g}" for t in r.targets)
        verdict = r.verdict or {}
        judged = f"{verdict.get('verdict', '')} {'; '.join(verdict.get('reasons', []))}".strip()
        rows.append((r.route, targets, r.baseline or "", _share(r), judged))
    print_table(["route", "targets", "baseline", "candidate share", "last judgment"], rows,
                cut=True, max_width=[None, 40, None, None, 60])  # fmt: skip


@routes_app.command("history")
def route_history(
    route: Annotated[str, typer.Argument(help="The route's name (the model clients send).")],
    json_: JsonOption = False,
) -> None:
    """Every change to the route's traffic, oldest first: rollouts started, stepped up,
    promoted, rolled back (with the judged windows of both targets), paused and resumed, with
    who did it and why. Each is also in the audit log (opsloop audit list)."""
    found = _Routes().history(route)

    def share(x: float | None) -> str:
        return "-" if x is None else f"{x:g}%"

    rows = [(when(h.at), h.actor, h.action, f"{share(h.share_before)} → {share(h.share_after)}",
             h.reason) for h in found]  # fmt: skip
    header = ["at", "who", "what", "share", "why"]
    print_listing(found, header, rows, as_json=json_, title=f"history of {route}")


@routes_app.command("rollout")
def rollout(
    route: Annotated[str, typer.Argument(help="The route's name.")],
    promote: Annotated[
        bool, typer.Option("--promote", help="Send all the pair's traffic to the candidate.")
    ] = False,
    rollback: Annotated[
        bool, typer.Option("--rollback", help="Send all of it back to the baseline.")
    ] = False,
    pause: Annotated[
        bool, typer.Option("--pause", help="Hold the share where it is; stop judging.")
    ] = False,
    resume: Annotated[
        bool, typer.Option("--resume", help="Judge a paused rollout again from now.")
    ] = False,
    reason: Annotated[str | None, typer.Option(help="Why, for the history.")] = None,
    json_: JsonOption = False,
) -> None:
    """Override a route's rollout by hand (the maintainer role on a server). The change is in
    the route's history and the audit log under your name; every gateway on the store follows
    it within a second."""
    from opsloop.errors import InvalidInput

    chosen = [n for n, on in (("promote", promote), ("rollback", rollback), ("pause", pause),
                              ("resume", resume)) if on]  # fmt: skip
    if len(chosen) != 1:
        raise InvalidInput("give exactly one of --promote, --rollback, --pause, --resume")
    after = _Routes().override(route, chosen[0], reason)
    if json_:
        print_json(after)
        return
    console().print(f"{route}: {_share(after)}", markup=False)
