"""The remote prompt backend: the prompt registry's REST API on an opsloop server."""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter

from opsloop.kernel.paging import Page
from opsloop.kernel.refs import parse_ref
from opsloop.kernel.transport import HttpTransport
from opsloop.llm.prompts import routes
from opsloop.llm.prompts.backend import PromptBackend
from opsloop.llm.prompts.entities import Prompt
from opsloop.llm.prompts.entities import PromptDiff
from opsloop.llm.prompts.entities import PromptInfo
from opsloop.llm.prompts.entities import PromptVersionCreate

__all__ = ["RemotePromptBackend"]

_PROMPTS = TypeAdapter(list[Prompt])
_JSON = {"Content-Type": "application/json"}


def _version_url(ref: str) -> str:
    parsed = parse_ref(ref, "prompt")
    selector = parsed.number if parsed.number is not None else parsed.alias
    return routes.VERSION.url(name=parsed.name, selector=selector)


class RemotePromptBackend(PromptBackend):
    """Prompts on an opsloop server; errors come back as the same ``OpsloopError`` classes.
    The server moves labels past its own label gate."""

    def __init__(self, transport: HttpTransport) -> None:
        self.http = transport

    def create_version(self, name: str, body: PromptVersionCreate) -> tuple[Prompt, bool]:
        response = self.http.request(
            "POST",
            routes.VERSIONS.url(name=name),
            content=body.model_dump_json(exclude_none=True),
            headers=_JSON,
            idempotent=False,
        )
        return Prompt.model_validate_json(response.content), response.status_code == 201

    def get(self, ref: str) -> Prompt:
        return Prompt.model_validate_json(self.http.request("GET", _version_url(ref)).content)

    def info(self, name: str) -> PromptInfo:
        raw = self.http.request("GET", routes.PROMPT.url(name=name)).content
        return PromptInfo.model_validate_json(raw)

    def list(self, max_results: int, page_token: str | None) -> Page[PromptInfo]:
        params: dict[str, Any] = {"max_results": max_results}
        if page_token:
            params["page_token"] = page_token
        raw = self.http.request("GET", routes.PROMPTS.url(), params=params).content
        return Page[PromptInfo].model_validate_json(raw)

    def versions(self, name: str) -> list[Prompt]:
        raw = self.http.request("GET", routes.VERSIONS.url(name=name)).content
        return _PROMPTS.validate_json(raw)

    def set_label(self, ref: str, label: str) -> Prompt:
        version = self.get(ref)
        path = routes.LABEL.url(name=version.name, label=label)
        raw = self.http.request("PUT", path, json={"version": version.version}).content
        return Prompt.model_validate_json(raw)

    def delete_label(self, name: str, label: str) -> None:
        self.http.request("DELETE", routes.LABEL.url(name=name, label=label))

    def diff(self, old_ref: str, new_ref: str) -> PromptDiff:
        params = {"old": old_ref, "new": new_ref}
        raw = self.http.request("GET", routes.DIFFS.url(), params=params).content
        return PromptDiff.model_validate_json(raw)
