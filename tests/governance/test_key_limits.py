"""A key's gateway limits, stored with the key: the services (SQLite and PostgreSQL), the same
calls through the local and the remote backend, the admin-only REST route with its audit event,
and ``opsloop keys limit`` / ``keys list`` with bad input."""

from __future__ import annotations

import json
from typing import Any

import pytest

from opsloop.errors import InvalidInput
from opsloop.errors import NotFound
from opsloop.errors import PermissionDenied
from opsloop.governance import services
from opsloop.governance.entities import KeyCreate
from opsloop.governance.entities import UserCreate
from opsloop.governance.key_limits import KeyLimitsChange
from opsloop.governance.key_limits import KeyLimitsOut
from opsloop.kernel.identity import Principal
from opsloop.schema import open_store
from tests.governance.conftest import UsersServer

ROOT = Principal(name="root", role="admin", auth="users")
MONA = Principal(name="mona", role="maintainer", auth="users")


def change(**given: Any) -> KeyLimitsChange:
    return KeyLimitsChange.model_validate(given)


def test_limits_are_set_merged_and_cleared(database_url: str) -> None:
    store = open_store(database_url)
    with store.write() as s:
        services.create_user(s, UserCreate(name="root", role="admin"), ROOT)
        services.create_user(s, UserCreate(name="mona", role="maintainer"), ROOT)
        key = services.create_key(s, KeyCreate(user="mona", name="app"), ROOT).key
    with store.write() as s:
        assert services.key_limits(s, key.id) == KeyLimitsOut()
        one = services.set_key_limits(s, key.id, change(rpm=60, tpm=20000), ROOT)
        assert one.limits == KeyLimitsOut(rpm=60, tpm=20000)
        two = services.set_key_limits(s, key.prefix, change(budget_usd=5), ROOT)  # by prefix
        assert two.limits == KeyLimitsOut(rpm=60, tpm=20000, budget_usd=5, budget_period="month")
        services.set_key_limits(s, key.id, change(budget_period="day"), ROOT)
        assert services.key_limits(s, key.id) == KeyLimitsOut(
            rpm=60, tpm=20000, budget_usd=5, budget_period="day"
        )
        listed = services.list_keys(s, ROOT, "*")
        assert [k.limits.summary() for k in listed] == ["60 rpm, 20000 tpm, $5/day"]
        cleared = services.set_key_limits(s, key.id, change(clear=True, tpm=100), ROOT)
        assert cleared.limits == KeyLimitsOut(tpm=100)
        assert services.key_limits(s, "f" * 32) is None
        for bad, error, message in [
            (change(), InvalidInput, "nothing to change"),
            (change(budget_period="day"), InvalidInput, "needs a budget"),
        ]:
            with pytest.raises(error, match=message):
                services.set_key_limits(s, key.id, bad, ROOT)
        with pytest.raises(PermissionDenied, match="'admin'"):  # her own key: still no
            services.set_key_limits(s, key.id, change(rpm=10_000), MONA)
        with pytest.raises(NotFound, match="no API key"):
            services.set_key_limits(s, "0" * 32, change(rpm=1), ROOT)
    store.dispose()


@pytest.mark.parametrize(
    "given", [{"rpm": 0}, {"tpm": -5}, {"budget_usd": 0}, {"budget_usd": float("inf")},
              {"budget_period": "week"}, {"rpm": 1.5}, {"budget_usd": 2e6}],
)  # fmt: skip
def test_bad_values_are_refused_with_the_field_named(given: dict[str, Any]) -> None:
    from opsloop import Client

    with Client() as local, pytest.raises(InvalidInput, match=next(iter(given))):
        local.governance.set_key_limits("0" * 32, **given)


def test_the_local_and_remote_backends_agree(client: Any) -> None:
    gov = client.governance
    gov.create_user("ci-bot", role="editor", service=True)
    key = gov.create_key("github", user="ci-bot").key
    limited = gov.set_key_limits(key.id, rpm=60, tpm=20000, budget_usd=5, budget_period="day")
    assert limited.id == key.id and limited.limits.summary() == "60 rpm, 20000 tpm, $5/day"
    assert [k.limits for k in gov.list_keys("*")] == [limited.limits]
    assert gov.set_key_limits(key.prefix, clear=True).limits == KeyLimitsOut()
    with pytest.raises(NotFound, match="no API key"):
        gov.set_key_limits("0" * 32, rpm=1)
    with pytest.raises(InvalidInput, match="budget_usd"):
        gov.set_key_limits(key.id, budget_usd=-1)
    with pytest.raises(InvalidInput, match="nothing to change"):
        gov.set_key_limits(key.id)


def test_the_route_is_an_admins_and_audited(users_server: UsersServer) -> None:
    with users_server.http("root") as root:
        keys = root.get("/api/keys", params={"user": "eddie"}).json()
        path = f"/api/keys/{keys[0]['id']}/limits"
        for user in ("vic", "eddie", "mona"):  # eddie's own key included
            with users_server.http(user) as http:
                answer = http.patch(path, json={"rpm": 100_000})
                assert answer.status_code == 403, answer.text
                assert answer.json()["error"]["details"]["required_role"] == "admin"
        for bad in ({"rpm": 0}, {"budget_usd": "lots"}, {"budget_period": "week"}, {"x": 1}, {}):
            answer = root.patch(path, json=bad)
            assert answer.status_code == 400, (bad, answer.text)
        done = root.patch(path, json={"rpm": 30, "budget_usd": 2.5})
        assert done.status_code == 200, done.text
        assert done.json()["limits"] == {"rpm": 30, "tpm": None, "budget_usd": 2.5,
                                         "budget_period": "month"}  # fmt: skip
        listed = root.get("/api/keys", params={"user": "eddie"}).json()
        assert listed[0]["limits"]["rpm"] == 30
        assert root.patch("/api/keys/nope/limits", json={"rpm": 1}).status_code == 404
        events = root.get("/api/audit", params={"resource": "keys"}).json()["items"]
        writes = [e for e in events if e["action"] == "PATCH /api/keys/{key_id}/limits"]
        assert [(e["actor"], e["outcome"]) for e in writes if e["outcome"] == 200] == [
            ("root", 200)
        ]
        assert {e["actor"] for e in writes if e["outcome"] == 403} == {"vic", "eddie", "mona"}


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    from opsloop.app.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["keys", *args])
    out = capsys.readouterr()
    return int(exit_.value.code or 0), out.out, out.err


def test_the_cli_sets_shows_and_refuses(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from opsloop import Client

    monkeypatch.setenv("COLUMNS", "250")  # the whole table, as on a wide terminal

    with Client() as local:
        local.governance.create_user("app", role="editor")
        key = local.governance.create_key("svc", user="app").key
    code, out, err = _cli(capsys, "limit", key.id, "--rpm", "60", "--tpm", "20000",
                          "--budget", "5", "--per", "day")  # fmt: skip
    assert code == 0, err
    assert out.strip() == f"key {key.id} ({key.prefix}...) of app: 60 rpm, 20000 tpm, $5/day"
    code, out, _ = _cli(capsys, "list", "--user", "*")
    assert code == 0 and "60 rpm, 20000 tpm, $5/day" in out and "limits" in out
    code, out, _ = _cli(capsys, "list", "--json")
    assert json.loads(out)[0]["limits"] == {"rpm": 60, "tpm": 20000, "budget_usd": 5.0,
                                            "budget_period": "day"}  # fmt: skip
    code, out, _ = _cli(capsys, "limit", key.prefix + "...", "--clear", "--json")
    assert code == 0 and json.loads(out)["limits"]["rpm"] is None
    code, out, _ = _cli(capsys, "limit", key.id, "--clear")
    assert code == 0 and out.strip().endswith("of app: no limits")
    for args, exit_code, message in [
        ([key.id, "--budget", "5", "--per", "week"], 2, "--per takes day or month"),
        ([key.id, "--rpm", "-1"], 2, "rpm: Input should be greater than or equal to 1"),
        ([key.id, "--rpm", "sixty"], 2, "--rpm takes a whole number, got 'sixty'"),
        ([key.id, "--budget", "5$"], 2, "--budget takes an amount in USD, got '5$'"),
        ([key.id], 2, "nothing to change"),
        ([key.id, "--per", "day"], 2, "a budget period needs a budget"),
        (["0" * 32, "--rpm", "5"], 3, "no API key"),
        (["opsk_nothing", "--rpm", "5"], 3, "no API key"),
    ]:
        code, _, err = _cli(capsys, "limit", *args)
        assert code == exit_code, (args, err)
        assert message in err and err.count("\n") == 1 and "Traceback" not in err, (args, err)
    code, _, err = _cli(capsys, "limit", key.id, "--rmp", "5")  # Click's usage error: a box
    assert code == 2 and "No such option '--rmp'" in err and "'--rpm'" in err
    assert "Traceback" not in err
