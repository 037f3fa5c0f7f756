"""Where a CI report is posted: one comment on a GitHub pull request or a GitLab merge request.

Each push to a pull request runs the job again; a new comment per push would bury the
conversation, so the report carries a hidden marker (:data:`MARKER`) and the job looks for a
comment holding it, updating that one in place and creating one only when there is none.

The clients are small and synchronous (httpx): they list the comments page by page, then
``PATCH``/``PUT`` or ``POST`` once. Their settings come from the variables the CI runners set
(:func:`github_from_env`, :func:`gitlab_from_env`), so the same command runs unchanged in
either. A host that refuses (a token without comment permission, an unknown pull request)
raises :class:`CommentRefused`: the command turns it into a warning, because the report has
already been written to its file and the job summary, and the gate's verdict, not the comment,
decides the job.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from opsloop.errors import InvalidInput

__all__ = [
    "MARKER",
    "CommentHost",
    "CommentRefused",
    "GitHubComments",
    "GitLabNotes",
    "Posted",
    "github_from_env",
    "gitlab_from_env",
]

MARKER = "<!-- opsloop-ci-report -->"
_PAGE = 100
_MAX_PAGES = 50  # 5,000 comments: past that, a new comment is the lesser evil
_TIMEOUT = httpx.Timeout(30.0, connect=10.0)


class CommentRefused(Exception):
    """The host did not take the comment (HTTP error or unreachable); the message says why."""


@dataclass(frozen=True)
class Posted:
    """What a post did: ``created`` or ``updated`` the comment with this id (and its link)."""

    action: str
    comment_id: int
    url: str | None = None


class CommentHost:
    """A place that holds one report comment: find it by :data:`MARKER`, update or create.

    Hosts differ only in data: their headers, where the pull request's comments are listed
    and created (``comments``), where one comment lives (``{items}/{id}``) and the HTTP method
    that updates one (``update``: PATCH on GitHub, PUT on GitLab); :meth:`upsert` is written
    once, here.
    """

    def __init__(
        self,
        base_url: str,
        headers: dict[str, str],
        http: httpx.Client | None,
        *,
        comments: str,
        items: str,
        update: str,
    ) -> None:
        self._http = http or httpx.Client(timeout=_TIMEOUT)
        self._base = base_url.rstrip("/")
        self._headers = headers
        self._comments, self._items, self._update = comments, items, update

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(
                method, self._base + path, headers=self._headers, **kwargs
            )
        except httpx.HTTPError as exc:
            raise CommentRefused(f"{method} {path}: {exc.__class__.__name__}: {exc}") from exc
        if response.status_code >= 400:
            detail = response.text.strip().replace("\n", " ")[:200]
            hint = (
                " (does the token have permission to comment?)"
                if response.status_code in (401, 403)
                else ""
            )
            raise CommentRefused(f"{method} {path}: HTTP {response.status_code}{hint} {detail}")
        return response.json() if response.content else None

    def find(self) -> dict[str, Any] | None:
        """The report comment already posted, if any (the first one holding the marker)."""
        for page in range(1, _MAX_PAGES + 1):
            items = self._call("GET", self._comments, params={"per_page": _PAGE, "page": page})
            for item in items or []:
                if MARKER in (item.get("body") or ""):
                    return dict(item)
            if not items or len(items) < _PAGE:
                return None
        return None

    def upsert(self, body: str) -> Posted:
        """Update the report comment in place, or create it; ``body`` must hold the marker."""
        if MARKER not in body:
            raise InvalidInput("a report comment must carry the marker, or it is posted anew")
        found = self.find()
        if found is not None:
            path = f"{self._items}/{int(found['id'])}"
            item = self._call(self._update, path, json={"body": body})
            return Posted("updated", int(found["id"]), _link(item))
        item = self._call("POST", self._comments, json={"body": body})
        return Posted("created", int(item["id"]), _link(item))

    def close(self) -> None:
        self._http.close()


def _link(item: Any) -> str | None:
    return item.get("html_url") if isinstance(item, dict) else None


class GitHubComments(CommentHost):
    """Issue comments of a pull request (a pull request is an issue to GitHub's comment API)."""

    def __init__(
        self,
        api_url: str,
        repository: str,
        number: int,
        token: str,
        http: httpx.Client | None = None,
    ) -> None:
        headers = {
            "Authorization": f"Bearer {token}",
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": "2022-11-28",
        }
        comments = f"/repos/{repository}/issues/{number}/comments"
        items = f"/repos/{repository}/issues/comments"
        super().__init__(api_url, headers, http, comments=comments, items=items, update="PATCH")
        self.repository, self.number = repository, number


class GitLabNotes(CommentHost):
    """Notes of a merge request. A personal, project or group access token goes in
    ``PRIVATE-TOKEN``; the job's own ``CI_JOB_TOKEN`` cannot write notes."""

    def __init__(
        self,
        api_url: str,
        project: str,
        merge_request: int,
        token: str,
        http: httpx.Client | None = None,
    ) -> None:
        self.project, self.merge_request = quote(project, safe=""), merge_request
        notes = f"/projects/{self.project}/merge_requests/{merge_request}/notes"
        super().__init__(
            api_url, {"PRIVATE-TOKEN": token}, http, comments=notes, items=notes, update="PUT"
        )


def _required(env: Mapping[str, str], *names: str) -> str:
    for name in names:
        if env.get(name):
            return env[name]
    raise InvalidInput(f"--post needs {' or '.join(names)} in the environment")


def _pull_request_number(env: Mapping[str, str]) -> int:
    """The pull request this job runs for: ``OPSLOOP_CI_PR``, the event payload GitHub writes
    to ``GITHUB_EVENT_PATH``, or a ``refs/pull/N/merge`` ref."""
    if env.get("OPSLOOP_CI_PR"):
        return _number(env["OPSLOOP_CI_PR"], "OPSLOOP_CI_PR")
    event_path = env.get("GITHUB_EVENT_PATH")
    if event_path and os.path.isfile(event_path):
        try:
            event = json.loads(Path(event_path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise InvalidInput(f"GITHUB_EVENT_PATH {event_path} is not readable JSON") from exc
        number = (event.get("pull_request") or {}).get("number") or event.get("number")
        if number:
            return int(number)
    matched = re.fullmatch(r"refs/pull/(\d+)/(?:merge|head)", env.get("GITHUB_REF", ""))
    if matched:
        return int(matched.group(1))
    raise InvalidInput(
        "no pull request to comment on: run on a pull_request event or set OPSLOOP_CI_PR"
    )


def _number(text: str, name: str) -> int:
    if not text.isdigit():
        raise InvalidInput(f"{name} must be a number, got {text!r}")
    return int(text)


def github_from_env(env: Mapping[str, str], http: httpx.Client | None = None) -> GitHubComments:
    """A GitHub client from Actions' variables: ``GITHUB_TOKEN``, ``GITHUB_REPOSITORY``,
    ``GITHUB_API_URL`` (GitHub Enterprise too) and the pull request's number."""
    return GitHubComments(
        env.get("GITHUB_API_URL") or "https://api.github.com",
        _required(env, "GITHUB_REPOSITORY"),
        _pull_request_number(env),
        _required(env, "OPSLOOP_CI_TOKEN", "GITHUB_TOKEN"),
        http,
    )


def gitlab_from_env(env: Mapping[str, str], http: httpx.Client | None = None) -> GitLabNotes:
    """A GitLab client from the variables of a merge-request pipeline: ``CI_API_V4_URL``,
    ``CI_PROJECT_ID``, ``CI_MERGE_REQUEST_IID``, and a token with ``api`` scope in
    ``OPSLOOP_CI_TOKEN`` or ``GITLAB_TOKEN``."""
    return GitLabNotes(
        _required(env, "CI_API_V4_URL"),
        _required(env, "CI_PROJECT_ID"),
        _number(_required(env, "CI_MERGE_REQUEST_IID"), "CI_MERGE_REQUEST_IID"),
        _required(env, "OPSLOOP_CI_TOKEN", "GITLAB_TOKEN"),
        http,
    )
