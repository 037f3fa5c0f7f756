"""Two prompt versions side by side (the pure diff), the playground's render of an edited copy,
the edit form's parsing, and the pages' and API's answers to bad input: an unknown version, an
edit that changes nothing, an invalid template or config, each a 4xx with a one-line reason."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from opsloop import Client
from opsloop.errors import InvalidInput
from opsloop.llm.prompts.diff import compare
from opsloop.llm.prompts.diff import side_by_side
from opsloop.llm.prompts.edits import version_from_form
from opsloop.llm.prompts.entities import ChatMessage
from opsloop.llm.prompts.entities import Prompt
from opsloop.llm.prompts.playground import PromptRender
from opsloop.llm.prompts.playground import render_copy
from tests.conftest import LiveServer


def _chat(version: int, *messages: tuple[str, str], **fields: Any) -> Prompt:
    chat = [ChatMessage(role=role, content=text) for role, text in messages]  # type: ignore[arg-type]
    return Prompt(
        name="p", version=version, type="chat", messages=chat, created_at=0, created_by="t",
        **fields,
    )  # fmt: skip


def test_lines_side_by_side() -> None:
    rows = side_by_side("a\nb\nc\nd", "a\nB\nc\nd\ne")
    assert [(r.kind, r.old_number, r.old, r.new_number, r.new) for r in rows] == [
        ("same", 1, "a", 1, "a"),
        ("changed", 2, "b", 2, "B"),
        ("same", 3, "c", 3, "c"),
        ("same", 4, "d", 4, "d"),
        ("added", None, None, 5, "e"),
    ]
    removed = side_by_side("x\ny\nz", "x")
    assert [(r.kind, r.old, r.new) for r in removed] == [
        ("same", "x", "x"),
        ("removed", "y", None),
        ("removed", "z", None),
    ]
    longer = side_by_side("one", "uno\ndos")  # a replaced run pairs lines, then the rest
    assert [r.kind for r in longer] == ["changed", "added"]
    assert side_by_side("", "") == []


def test_messages_are_aligned_before_their_lines_are_compared() -> None:
    old = _chat(
        1, ("system", "Be kind."), ("user", "{{ q }}"), config={"model": "a", "seed": 1},
        variables=["q"], labels=["production"],
    )  # fmt: skip
    new = _chat(
        2, ("system", "You help with orders."), ("system", "Be kind.\nBe brief."),
        ("user", "{{ q }}"), config={"model": "b", "seed": 1, "top_p": None},
        variables=["q", "tone"], labels=["staging"],
    )  # fmt: skip
    side = compare(old, new)
    first, second, third = side.blocks
    assert (first.old_role, first.new_role) == (None, "system")
    assert [r.kind for r in first.lines] == ["added"]
    assert [r.kind for r in second.lines] == ["same", "added"] and second.changed
    assert not third.changed  # the inserted message shifts nothing after it
    assert [(c.key, c.old, c.new) for c in side.config] == [
        ("model", "a", "b"),
        ("top_p", None, None),
    ]
    assert (side.variables_added, side.variables_removed) == (["tone"], [])
    assert (side.labels_added, side.labels_removed) == (["staging"], ["production"])
    assert not side.identical
    role_only = compare(_chat(1, ("user", "hi")), _chat(2, ("system", "hi")))
    assert role_only.blocks[0].changed and not role_only.identical
    assert compare(old, old).identical


def test_a_text_prompt_against_a_chat_prompt() -> None:
    text = Prompt(name="p", version=1, type="text", text="Hi {{ q }}", created_at=0, created_by="t")
    side = compare(text, _chat(2, ("user", "Hi {{ q }}")))
    assert [(b.old_role, b.new_role) for b in side.blocks] == [("text", "user")]
    assert [r.kind for r in side.blocks[0].lines] == ["same"] and side.blocks[0].changed
    rewritten = compare(_chat(1, ("system", "aaaa"), ("user", "u")), _chat(2, ("system", "zzzz")))
    roles = [(b.old_role, b.new_role) for b in rewritten.blocks]
    assert roles == [("system", None), ("user", None), (None, "system")]  # nothing alike


def test_render_an_edited_copy() -> None:
    text = render_copy(PromptRender(text="Q: {{ q }}", variables={"q": "why"}))
    assert text.messages == [ChatMessage(role="user", content="Q: why")] and text.variables == ["q"]
    chat = render_copy(PromptRender(messages=[ChatMessage(role="system", content="{{ a }}{{ b }}")],
                                    variables={"a": 1, "b": "x"}))  # fmt: skip
    assert chat.messages[0].content == "1x" and chat.variables == ["a", "b"]
    with pytest.raises(InvalidInput, match="give a value for: b") as missing:
        render_copy(PromptRender(text="{{ a }} {{ b }}", variables={"a": 1}))
    assert missing.value.details == {"missing": ["b"], "variables": ["a", "b"]}
    for bad in (PromptRender(), PromptRender(text="x", messages=[]), PromptRender(messages=[])):
        with pytest.raises(InvalidInput):
            render_copy(bad)
    with pytest.raises(InvalidInput, match="syntax error"):
        render_copy(PromptRender(text="{{ a "))
    with pytest.raises(InvalidInput, match="over 200,000"):
        render_copy(PromptRender(text="x" * 200_001))


def test_the_edit_form_becomes_a_version() -> None:
    form = {"kind": ["chat"], "role": ["system", "user", "user"],
            "content": ["Be kind.\r\nBe brief.", "{{ q }}", "  "],
            "config": ['{"model": "m"}'], "message": [" tidy "]}  # fmt: skip
    body = version_from_form(form)
    assert body.messages == [ChatMessage(role="system", content="Be kind.\nBe brief."),
                             ChatMessage(role="user", content="{{ q }}")]  # fmt: skip
    assert (body.config, body.message, body.labels) == ({"model": "m"}, "tidy", [])
    text = version_from_form(
        {"kind": ["text"], "text": ["a\r\nb"], "config": [""], "message": ["m"]}
    )
    assert (text.text, text.config) == ("a\nb", {})
    text_form, chat_form = {"kind": ["text"], "text": ["x"]}, {"kind": ["chat"], "message": ["m"]}
    cases = {
        "the commit message is empty": {**text_form, "message": ["  "]},
        "config is not JSON: Expecting": {**text_form, "config": ["{"], "message": ["m"]},
        "is a JSON object": {**text_form, "config": ["[1]"], "message": ["m"]},
        "unknown message role 'boss'": {**chat_form, "role": ["boss"], "content": ["x"]},
        "needs a role and a content": {**chat_form, "role": ["user"], "content": []},
        "unknown prompt kind": {"kind": ["image"], "message": ["m"]},
    }
    for reason, bad in cases.items():
        with pytest.raises(InvalidInput, match=reason) as caught:
            version_from_form(bad)
        assert "\n" not in caught.value.message


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, httpx.Client]]:
    folder = tmp_path_factory.mktemp("prompt-diff")
    with LiveServer(f"sqlite:///{folder / 'db.sqlite'}", str(folder / "blobs")) as live:
        with Client(server_url=live.url) as sdk:
            sdk.prompts.create("answer", text="Answer: {{ question }}", config={"model": "m"})
            sdk.prompts.create(
                "answer", text="Answer briefly: {{ question }}", config={"model": "m"}
            )
        with httpx.Client(base_url=live.url, timeout=30) as http:
            yield live, http


def _one_line(answer: httpx.Response) -> str:
    """The reason an error page or body gives, asserted to be one line."""
    if answer.headers["content-type"].startswith("application/json"):
        message = str(answer.json()["error"]["message"])
    else:
        found = re.search(r'class="error-message">(.*?)</pre>', answer.text, re.S)
        assert found is not None, answer.text[:500]
        message = found.group(1)
    assert message.strip() and "\n" not in message.strip() and "Traceback" not in message
    return message


def _post_form(http: httpx.Client, name: str, **fields: str) -> httpx.Response:
    data = {"kind": "text", "config": '{"model": "m"}', "message": "edit", **fields}
    return http.post(f"/prompts/{name}/versions", data=data)


def test_pages_and_api_answer_bad_input_with_a_4xx(server: tuple[LiveServer, httpx.Client]) -> None:
    _, http = server
    page = http.get("/prompts/answer/diff", params={"old": "1", "new": "2"})
    assert page.status_code == 200 and "Answer briefly: {{ question }}" in page.text
    assert page.text.count('<tr class="changed">') == 1
    assert "answer@9 does not exist" in _one_line(
        unknown := http.get("/prompts/answer/diff?old=9&new=2")
    )
    assert unknown.status_code == 404
    assert http.get("/prompts/ghost/diff").status_code == 404
    assert http.get("/prompts/answer/edit?version=7").status_code == 404
    assert http.get("/prompts/answer/playground?version=7").status_code == 404

    assert _post_form(http, "answer", text="Answer briefly: {{ question }}").status_code == 409
    assert "nothing changed" in _one_line(
        _post_form(http, "answer", text="Answer briefly: {{ question }}")
    )
    broken = _post_form(http, "answer", text="Answer: {{ question")
    assert broken.status_code == 400 and "syntax error" in _one_line(broken)
    assert _post_form(http, "answer", text="x", config="{oops").status_code == 400
    assert _post_form(http, "ghost", text="x").status_code == 404  # the form edits, never creates
    saved = _post_form(http, "answer", text="Answer kindly: {{ question }}")
    assert saved.status_code == 303 and saved.headers["location"] == "/prompts/answer#v3"
    assert http.get("/api/prompts/answer/versions/3").json()["message"] == "edit"

    rendered = http.post(
        "/api/prompt-renders", json={"text": "Hi {{ who }}", "variables": {"who": "Ann"}}
    )
    assert rendered.json() == {
        "messages": [{"role": "user", "content": "Hi Ann"}],
        "variables": ["who"],
    }
    missing = http.post(
        "/api/prompt-renders", json={"messages": [{"role": "user", "content": "{{ who }}"}]}
    )
    assert missing.status_code == 400 and missing.json()["error"]["details"]["missing"] == ["who"]
    for bad in (
        {},
        {"text": "{{ x "},
        {"messages": [{"role": "boss", "content": "x"}]},
        {"text": 3},
    ):
        answer = http.post("/api/prompt-renders", json=bad)
        assert answer.status_code == 400, bad
        _one_line(answer)
