"""The prompt registry on local and HTTP backends over SQLite and PostgreSQL, the cache with its
fallback against a server that goes away, the sandbox, and the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from opsloop.errors import InvalidInput
from opsloop.errors import NotFound
from opsloop.errors import StoreError
from tests.cli.support import in_process
from tests.conftest import LiveServer

OPSLOOP = [str(Path(sys.executable).with_name("opsloop"))]
CHAT = [
    {"role": "system", "content": "You are {{ persona }}."},
    {"role": "user", "content": "{{ question }}"},
]


def test_versions_labels_render_and_diff(client: Any) -> None:
    prompts = client.prompts
    first = prompts.create(
        "answer", text="Answer: {{ question }}", config={"model": "tiny"}, labels=["production"]
    )
    assert (first.version, first.variables, first.labels) == (1, ["question"], ["production"])
    same = prompts.create("answer", text="Answer: {{ question }}", config={"model": "tiny"})
    assert same.version == 1  # nothing changed: no new version
    second = prompts.create(
        "answer",
        text="Answer briefly in {{ language }}: {{ question }}",
        config={"model": "tiny", "temperature": 0.2},
        message="shorter answers",
    )
    assert second.version == 2 and second.labels == []
    assert prompts.get("answer").version == 1  # production still points at 1
    assert prompts.get("answer", version=2, cache_ttl=0).compile(
        language="French", question="Why?"
    ) == ("Answer briefly in French: Why?")
    with pytest.raises(InvalidInput, match=r"missing template variable.*language"):
        prompts.get("answer", version=2).compile(question="Why?")
    prompts.set_label("answer", 2, "production")
    assert prompts.get("answer", cache_ttl=0).version == 2
    diff = prompts.diff("answer", 1, 2)
    assert "+Answer briefly in {{ language }}" in diff.template
    assert diff.config == {"temperature": (None, 0.2)} and diff.variables_added == ["language"]
    chat = prompts.create("support", messages=CHAT, labels=["staging"])
    assert chat.type == "chat" and chat.variables == ["persona", "question"]
    rendered = prompts.get("support", label="staging").compile(persona="kind", question="Hi")
    assert rendered == [
        {"role": "system", "content": "You are kind."},
        {"role": "user", "content": "Hi"},
    ]
    assert [p.version for p in prompts.versions("answer")] == [2, 1]
    assert prompts.info("answer").labels == {"production": 2}


def test_bad_input_is_refused_and_changes_nothing(client: Any) -> None:
    prompts = client.prompts
    prompts.create("p", text="Hello {{ name }}", labels=["production"])
    with pytest.raises(InvalidInput, match="syntax error"):
        prompts.create("p", text="Hello {{ name ")
    with pytest.raises(InvalidInput, match="either text"):
        prompts.create("p", text="a", messages=[{"role": "user", "content": "b"}])
    with pytest.raises(InvalidInput):
        prompts.create("p", messages=[{"role": "robot", "content": "b"}])
    with pytest.raises(InvalidInput, match="cannot be moved"):
        prompts.set_label("p", 1, "latest")
    with pytest.raises(NotFound, match="no label 'staging'"):
        prompts.get("p", label="staging")
    with pytest.raises(NotFound, match="does not exist"):
        prompts.get("ghost")
    with pytest.raises(NotFound):
        prompts.set_label("p", 7, "staging")
    assert [p.version for p in prompts.versions("p")] == [1]
    evil = prompts.create("evil", text="{{ ''.__class__.__mro__[1].__subclasses__() }}")
    with pytest.raises(InvalidInput, match="sandbox forbids"):
        evil.compile()


def test_cache_serves_stale_and_falls_back_only_when_unreachable(
    sqlite_url: str, tmp_path: Path
) -> None:
    from opsloop import Client

    with LiveServer(sqlite_url, str(tmp_path / "blobs")) as server:
        client = Client(server_url=server.url)
        client.prompts.create("greet", text="Hi {{ name }}", labels=["production"])
        cached = client.prompts.get("greet", cache_ttl=3600)
        other = Client(server_url=server.url)
        other.prompts.create("greet", text="Hello {{ name }}")
        other.prompts.set_label("greet", 2, "production")
        assert client.prompts.get("greet", cache_ttl=3600).version == cached.version == 1
        with pytest.raises(NotFound):  # reachable server, unknown prompt: never the fallback
            client.prompts.get("ghost", fallback="x")
    # The server is gone: cached prompts are still served, others use the fallback.
    assert client.prompts.get("greet", cache_ttl=3600).version == 1
    fallback = client.prompts.get("farewell", fallback="Bye {{ name }}")
    assert fallback.is_fallback and fallback.compile(name="Ann") == "Bye Ann"
    with pytest.raises(StoreError, match="cannot reach"):
        client.prompts.get("farewell")


def test_stale_entries_refresh_in_the_background(tmp_path: Path) -> None:
    import time

    from opsloop import Client

    client = Client(database_url=f"sqlite:///{tmp_path / 'p.db'}", blob_url=str(tmp_path / "b"))
    client.prompts.create("greet", text="Hi", labels=["production"])
    assert client.prompts.get("greet", cache_ttl=0.01).text == "Hi"
    other = Client(database_url=f"sqlite:///{tmp_path / 'p.db'}", blob_url=str(tmp_path / "b"))
    other.prompts.create("greet", text="Hello", labels=["production"])
    time.sleep(0.05)
    assert client.prompts.get("greet", cache_ttl=0.01).text == "Hi"  # stale, served at once
    deadline = time.monotonic() + 5
    while client.prompts.get("greet", cache_ttl=10).text != "Hello":
        assert time.monotonic() < deadline, "the background refresh never landed"
        time.sleep(0.02)


def test_rest_errors(sqlite_url: str, tmp_path: Path) -> None:
    with LiveServer(sqlite_url, str(tmp_path / "blobs")) as server:
        api = httpx.Client(base_url=server.url + "/api")
        created = api.post("/prompts/a/versions", json={"text": "x {{ y }}"})
        assert created.status_code == 201
        assert api.post("/prompts/a/versions", json={"text": "x {{ y }}"}).status_code == 200
        assert api.post("/prompts/a/versions", json={"text": "x", "bogus": 1}).status_code == 400
        assert api.post("/prompts/bad name/versions", json={"text": "x"}).status_code == 400
        assert api.get("/prompts/a/versions/production").status_code == 404
        assert api.put("/prompts/a/labels/prod", json={"version": 5}).status_code == 404
        assert api.delete("/prompts/a/labels/prod").status_code == 404
        assert [v["version"] for v in api.get("/prompts/a/versions").json()] == [1]


def test_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = in_process(capsys)
    run("prompts", "create", "q", "--text", "Q: {{ question }}", "--label", "production")
    (tmp_path / "chat.json").write_text(json.dumps(CHAT))
    out = run("prompts", "create", "q", "--messages", str(tmp_path / "chat.json"), "--config",
              "temperature=0.1", "--json").stdout  # fmt: skip
    assert json.loads(out)["version"] == 2
    assert run("prompts", "render", "q", "--var", "question=Why").stdout.strip() == "Q: Why"
    # The installed command, once: a missing variable is exit code 2 and one line on stderr.
    done = subprocess.run(
        [*OPSLOOP, "prompts", "render", "q"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2, done.stderr
    assert "missing template variable(s): question" in done.stderr
    assert "Traceback" not in done.stderr
    run("prompts", "label", "q", "2", "staging")
    assert "+[system]" in run("prompts", "diff", "q", "1", "2").stdout
    assert "no label 'canary'" in run("prompts", "render", "q", "--label", "canary", code=3).stderr
    listed = json.loads(run("prompts", "list", "--json").stdout)
    assert listed[0]["labels"] == {"production": 1, "staging": 2}
