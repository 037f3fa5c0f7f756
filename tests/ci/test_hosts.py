"""The comment clients against the loopback GitHub and GitLab APIs: one comment, found again by
its marker and updated in place; a refusal is reported, not raised past the command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from opsloop.ci.hosts import MARKER
from opsloop.ci.hosts import CommentRefused
from opsloop.ci.hosts import GitHubComments
from opsloop.ci.hosts import GitLabNotes
from opsloop.ci.hosts import github_from_env
from opsloop.ci.hosts import gitlab_from_env
from opsloop.errors import InvalidInput

from .fake_hosts import GOOD_TOKEN
from .fake_hosts import READ_ONLY_TOKEN
from .fake_hosts import FakeHost

THREAD = "/repos/acme/churn/issues/7/comments"


def test_github_creates_one_comment_then_updates_it_in_place(fake_host: FakeHost) -> None:
    for n in range(130):  # the conversation so far: the marker must be looked for past page 1
        fake_host.add(THREAD, f"review comment {n}")
    github = GitHubComments(fake_host.url, "acme/churn", 7, GOOD_TOKEN)
    first = github.upsert(f"{MARKER}\nfirst push")
    assert first.action == "created" and first.url and first.url.endswith(str(first.comment_id))
    second = github.upsert(f"{MARKER}\nsecond push")
    assert (second.action, second.comment_id) == ("updated", first.comment_id)
    bodies = [c["body"] for c in fake_host.threads[THREAD]]
    assert len(bodies) == 131 and bodies[-1] == f"{MARKER}\nsecond push"
    assert fake_host.writes() == [
        ("POST", THREAD),
        ("PATCH", f"/repos/acme/churn/issues/comments/{first.comment_id}"),
    ]
    listing = [r for r in fake_host.requests if r.method == "GET"]
    assert [r.query["page"] for r in listing[:2]] == [["1"], ["2"]]
    assert all(r.headers["Authorization"] == f"Bearer {GOOD_TOKEN}" for r in fake_host.requests)
    assert listing[0].headers["Accept"] == "application/vnd.github+json"


def test_a_token_without_comment_permission_is_refused_with_a_reason(
    fake_host: FakeHost,
) -> None:
    github = GitHubComments(fake_host.url, "acme/churn", 7, READ_ONLY_TOKEN)
    with pytest.raises(CommentRefused, match=r"HTTP 403 \(does the token have permission"):
        github.upsert(f"{MARKER}\nreport")
    assert fake_host.threads.get(THREAD) is None
    with pytest.raises(CommentRefused, match="ConnectError"):
        GitHubComments("http://127.0.0.1:9", "acme/churn", 7, GOOD_TOKEN).upsert(MARKER)
    with pytest.raises(InvalidInput, match="must carry the marker"):
        github.upsert("no marker: every push would add a comment")


def test_gitlab_notes_on_a_merge_request(fake_host: FakeHost) -> None:
    gitlab = GitLabNotes(f"{fake_host.url}/api/v4", "acme/churn", 12, GOOD_TOKEN)
    created = gitlab.upsert(f"{MARKER}\none")
    updated = gitlab.upsert(f"{MARKER}\ntwo")
    notes = "/api/v4/projects/acme%2Fchurn/merge_requests/12/notes"
    assert fake_host.writes() == [("POST", notes), ("PUT", f"{notes}/{created.comment_id}")]
    assert updated.comment_id == created.comment_id
    assert all(r.headers["PRIVATE-TOKEN"] == GOOD_TOKEN for r in fake_host.requests)


def test_clients_read_the_runners_variables(tmp_path: Path) -> None:
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"pull_request": {"number": 42}}))
    env = {"GITHUB_REPOSITORY": "acme/churn", "GITHUB_TOKEN": "t", "GITHUB_EVENT_PATH": str(event)}
    github = github_from_env(env)
    assert (github.repository, github.number) == ("acme/churn", 42)
    assert (
        github_from_env({**env, "GITHUB_EVENT_PATH": "", "GITHUB_REF": "refs/pull/9/merge"}).number
        == 9
    )
    with pytest.raises(InvalidInput, match="no pull request to comment on"):
        github_from_env({**env, "GITHUB_EVENT_PATH": ""})
    with pytest.raises(InvalidInput, match="needs OPSLOOP_CI_TOKEN or GITHUB_TOKEN"):
        github_from_env({**env, "GITHUB_TOKEN": ""})
    lab = {
        "CI_API_V4_URL": "https://gitlab.example/api/v4",
        "CI_PROJECT_ID": "17",
        "CI_MERGE_REQUEST_IID": "3",
        "GITLAB_TOKEN": "t",
    }
    assert gitlab_from_env(lab).merge_request == 3
    with pytest.raises(InvalidInput, match="CI_MERGE_REQUEST_IID must be a number"):
        gitlab_from_env({**lab, "CI_MERGE_REQUEST_IID": "three"})
