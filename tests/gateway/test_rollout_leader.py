"""Two gateways on one store: only the holder of the ``gateway-rollouts`` lease judges the
rollout, and the other takes up its verdict on its own tick."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from opsloop.schema import open_store
from opsloop.store.leadership import Leadership
from tests.gateway.test_rollout import Rig
from tests.gateway.test_rollout import _config
from tests.gateway.upstream_server import Upstream


def test_only_the_leading_gateway_judges(
    upstream: Upstream, sqlite_url: str, tmp_path: Path
) -> None:
    store = open_store(sqlite_url)
    judge = {"max_error_rate": 0.1, "min_calls": 5}
    config = _config(upstream, "500", {"steps": [50, 100], "judge": judge})
    first, second = Rig(config, store, tmp_path / "a"), Rig(config, store, tmp_path / "b")
    for rig in (first, second):
        rig.controller.leadership = Leadership(store, "gateway-rollouts")
        rig.controller.leadership.try_once()
    assert first.controller.leadership.is_leader()
    assert not second.controller.leadership.is_leader()
    assert second.send(40) == Counter({"base": 40})  # traffic through the gateway not leading
    assert second.controller.tick() == {}  # stands by: nothing judged
    assert second.route().status == "running"
    assert first.controller.tick() == {"chat": "fail"}  # the leader judges every gateway's spans
    second.controller.tick()  # takes up the leader's verdict
    split = second.gateway.router.routes["chat"].split
    assert split is not None and split.share == 0
    assert [e.action for e in second.history()] == ["start", "rollback"]
    store.dispose()
