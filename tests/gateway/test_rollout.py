"""Canary and A/B between two targets of a route, on a loopback upstream: a candidate that
fails (500s, or answers the online eval scores low) is rolled back by the controller with the
judgment in the route's history and the audit log; a good one climbs the steps and is promoted;
the routers of every gateway on the store follow the share the store holds. The controller is
driven by explicit ``tick()`` calls, never by sleeping."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

import opsloop.llm.gateway.rollout_tables  # noqa: F401  (its tables join the schema)
from opsloop.app.gateway import build_gateway
from opsloop.governance import audit
from opsloop.llm.gateway import rollout_state as state
from opsloop.llm.gateway.config import parse_config
from opsloop.llm.gateway.ports import Caller
from opsloop.llm.gateway.proxy import Gateway
from opsloop.llm.gateway.rollout import RolloutController
from opsloop.llm.gateway.rollout_config import EVAL_SCORE
from opsloop.llm.tracing.tables import ScoreRow
from opsloop.schema import open_store
from opsloop.store.database import Store
from tests.gateway.upstream_server import Upstream

BODY = json.dumps({"model": "chat", "messages": [{"role": "user", "content": "hi"}]}).encode()


def _config(upstream: Upstream, candidate_mode: str, rollout: dict[str, Any]) -> Any:
    targets = [
        {"name": "base", "base_url": upstream.url("base")},
        {"name": "cand", "base_url": upstream.url(candidate_mode)},
    ]
    rollout = {"baseline": "base", "candidate": "cand", "interval_s": 0.001, **rollout}
    route = {"name": "chat", "targets": targets, "retries": 1, "backoff_s": 0, "rollout": rollout}
    return parse_config({"routes": [route], "auth": "open"})


class Rig:
    """A gateway storing its spans in ``store``, with its rollout controller (not started)."""

    def __init__(self, config: Any, store: Store, folder: Path) -> None:
        self.store = store
        self.loop = asyncio.new_event_loop()  # one loop per gateway: its connections live on it
        client = httpx.AsyncClient()
        self.gateway: Gateway = build_gateway(
            config, store=store, spool_folder=folder, client=client
        )
        self.controller = RolloutController(store, self.gateway.router.routes)
        self.controller.sync()

    def send(self, n: int) -> Counter[str]:
        """``n`` chat calls; which target answered each. The spans are stored on return."""

        async def calls() -> list[str]:
            out = []
            for _ in range(n):
                answer = await self.gateway.chat(Caller(), BODY)
                out.append(answer.headers["x-opsloop-target"])
            return out

        answered = Counter(self.loop.run_until_complete(calls()))
        assert self.gateway.sink is not None
        self.gateway.sink.close()  # stores what is queued; the next call starts it again
        return answered

    def route(self) -> state.RouteState:
        with self.store.read() as session:
            return next(r for r in state.list_routes(session) if r.route == "chat")

    def history(self) -> list[state.HistoryEntry]:
        with self.store.read() as session:
            return state.history(session, "chat")


@pytest.fixture
def store(sqlite_url: str) -> Any:
    opened = open_store(sqlite_url)
    yield opened
    opened.dispose()


def test_a_candidate_that_fails_is_rolled_back_by_itself(
    upstream: Upstream, store: Store, tmp_path: Path
) -> None:
    judge = {"max_error_rate": 0.1, "min_calls": 5}
    rig = Rig(_config(upstream, "500", {"steps": [50, 100], "judge": judge}), store, tmp_path)
    assert rig.route().share == 50 and rig.route().status == "running"
    answered = rig.send(40)  # the candidate's 500s are retried on the baseline: clients see none
    assert answered == Counter({"base": 40})
    assert rig.controller.tick() == {"chat": "fail"}
    after = rig.route()
    assert (after.share, after.status) == (0, "rolled_back")
    assert after.verdict is not None and after.verdict["candidate"]["errors"] >= 5
    start, rollback = rig.history()
    assert (start.action, start.share_after) == ("start", 50)
    assert (rollback.action, rollback.actor) == ("rollback", state.CONTROLLER)
    assert (rollback.share_before, rollback.share_after) == (50, 0)
    assert "error_rate" in rollback.reason and rollback.details["baseline"]["errors"] == 0
    before = upstream.modes().count("500")
    assert rig.send(20) == Counter({"base": 20})
    assert upstream.modes().count("500") == before  # the split keeps the candidate out now
    with store.read() as session:
        events = [
            e.action for e in audit.iter_events(session) if e.resource == "gateway/routes/chat"
        ]
    assert any(a.startswith("gateway rollout rollback: judged") for a in events)


def test_a_good_candidate_climbs_the_steps_and_is_promoted(
    upstream: Upstream, store: Store, tmp_path: Path
) -> None:
    judge = {"max_error_rate": 0.1, "max_p95_latency_ms": 10_000, "min_calls": 3}
    rig = Rig(_config(upstream, "good", {"steps": [40, 70, 100], "judge": judge}), store, tmp_path)
    assert rig.controller.tick() == {"chat": "inconclusive"}  # no traffic yet: never a pass
    assert rig.route().share == 40
    rig.send(40)
    assert rig.controller.tick() == {"chat": "pass"}
    assert rig.route().share == 70
    rig.send(40)
    assert rig.controller.tick() == {"chat": "pass"}
    assert (rig.route().share, rig.route().status) == (100, "promoted")
    assert [(h.action, h.share_after) for h in rig.history()] == [
        ("start", 40), ("step", 70), ("promote", 100)
    ]  # fmt: skip
    assert rig.send(20) == Counter({"cand": 20})
    assert rig.controller.tick() == {}  # promoted: nothing left to judge


def test_answers_the_online_eval_scores_low_roll_the_candidate_back(
    upstream: Upstream, store: Store, tmp_path: Path
) -> None:
    judge = {"min_score": 0.5, "min_scores": 3, "sample": 1.0, "min_calls": 3,
             "assertions": [{"type": "not-contains", "value": "answer from bad"}]}  # fmt: skip
    rig = Rig(
        _config(upstream, "bad", {"mode": "ab", "split": 50, "judge": judge}), store, tmp_path
    )
    answered = rig.send(40)
    assert answered["cand"] >= 3
    assert rig.controller.tick() == {"chat": "fail"}
    rollback = rig.history()[-1]
    assert rollback.action == "rollback" and "score 0 < min 0.5" in rollback.reason
    assert rollback.details["baseline"]["score"] == 1.0  # the baseline's answers pass
    with store.read() as session:
        scores = session.query(ScoreRow).filter(ScoreRow.name == EVAL_SCORE).count()
    assert scores == 40  # every answer of both targets was in the sample, scored once


def test_ab_keeps_its_split_while_it_passes(
    upstream: Upstream, store: Store, tmp_path: Path
) -> None:
    judge = {"max_error_rate": 0.1, "min_calls": 3}
    rig = Rig(
        _config(upstream, "good", {"mode": "ab", "split": 30, "judge": judge}), store, tmp_path
    )
    answered = rig.send(200)
    assert 30 <= answered["cand"] <= 90  # 30% of 200 is 60; this range is 5 sigma wide
    assert rig.controller.tick() == {"chat": "pass"}
    assert (rig.route().share, rig.route().status) == (30, "running")  # an A/B never promotes


def test_a_person_can_pause_resume_promote_and_roll_back(
    upstream: Upstream, store: Store, tmp_path: Path
) -> None:
    judge = {"max_error_rate": 0.1}
    rig = Rig(_config(upstream, "good", {"judge": judge}), store, tmp_path)
    other = Rig(_config(upstream, "good", {"judge": judge}), store, tmp_path / "2")  # 2nd gateway

    def act(action: str) -> state.RouteState:
        with store.write() as session:
            return state.override(session, "chat", action, "alice", f"{action} please", 1)  # type: ignore[arg-type]

    assert act("pause").status == "paused"
    assert rig.controller.tick() == {}  # paused: not judged
    with pytest.raises(Exception, match="cannot pause"):
        act("pause")
    assert act("resume").status == "running"
    assert act("promote").share == 100
    other.controller.refresh()
    assert other.send(10) == Counter({"cand": 10})  # the other gateway follows the store
    assert act("rollback").share == 0
    other.controller.refresh()
    assert other.send(10) == Counter({"base": 10})
    manual = [h for h in rig.history() if h.actor == "alice"]
    assert [h.action for h in manual] == ["pause", "resume", "promote", "rollback"]
    assert manual[-1].reason == "rollback please"
