"""Label moves pass the ``LabelGate`` handed to the prompt registry: the evals domain's label rules
on the local and HTTP backends, a refusal from an app that never wired a gate, and the exact
questions the registry asks its gate."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.orm import Session

from opsloop.errors import Conflict
from tests.conftest import LiveServer


def test_label_rules_guard_every_label_move_on_both_backends(client: Any) -> None:
    prompts = client.prompts
    prompts.create("qa", text="Q: {{ q }}", labels=["production"])
    prompts.create("qa", text="Q: {{ q }}?")
    client.evals.require("qa", "production", suite="qa-suite", min_pass_rate=1.0)
    with pytest.raises(Conflict, match="none has tried qa@2"):
        prompts.set_label("qa", 2, "production")
    with pytest.raises(Conflict, match="none has tried qa@3"):
        prompts.create("qa", text="Q: {{ q }}!", labels=["production"])
    assert [p.version for p in prompts.versions("qa")] == [2, 1]  # the refused create left nothing
    prompts.set_label("qa", 2, "staging")  # labels without a rule move freely
    assert prompts.info("qa").labels == {"production": 1, "staging": 2}


def test_an_app_without_a_gate_refuses_to_move_labels(sqlite_url: str, tmp_path: Path) -> None:
    with LiveServer(sqlite_url, str(tmp_path / "blobs")) as server:
        api = httpx.Client(base_url=server.url + "/api", timeout=60)  # slow first request
        assert api.post("/prompts/a/versions", json={"text": "x"}).status_code == 201
        del server.app.state.label_gate
        refused = api.put("/prompts/a/labels/production", json={"version": 1})
        assert refused.status_code == 500
        assert "no label gate is configured" in refused.json()["error"]["message"]
        assert api.get("/prompts/a").json()["labels"] == {}


class RecordingGate:
    """Lets every label move and remembers what it was asked."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, int, str]] = []

    def check(self, session: Session, prompt_name: str, number: int, label: str) -> None:
        self.asked.append((prompt_name, number, label))


def test_the_registry_asks_the_gate_it_is_handed(sqlite_url: str, tmp_path: Path) -> None:
    from opsloop.client import shared_stores
    from opsloop.config import load_settings
    from opsloop.llm.prompts.local import LocalPromptBackend
    from opsloop.llm.prompts.sdk import PromptsClient

    store, _ = shared_stores(load_settings(database_url=sqlite_url, blob_url=str(tmp_path / "b")))
    gate = RecordingGate()
    prompts = PromptsClient(LocalPromptBackend(store, gate))
    prompts.create("qa", text="Q: {{ q }}", labels=["production", "staging"])
    prompts.create("qa", text="Q: {{ q }}?")
    prompts.set_label("qa", 2, "production")
    assert gate.asked == [("qa", 1, "production"), ("qa", 1, "staging"), ("qa", 2, "production")]
