"""The prompt backend contract and its two implementations: in-process services or REST.

Small enough to live together: each method is one transaction (local) or one request (HTTP),
and one conformance suite runs against both.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any
from urllib.parse import quote

from pydantic import TypeAdapter

from opsloop.kernel.identity import current_user
from opsloop.kernel.paging import Page
from opsloop.kernel.refs import parse_ref
from opsloop.kernel.transport import HttpTransport
from opsloop.llm.prompts import services
from opsloop.llm.prompts.entities import Prompt, PromptDiff, PromptInfo, PromptVersionCreate
from opsloop.llm.prompts.ports import LabelGate
from opsloop.store.database import Store

__all__ = ["HttpPromptBackend", "LocalPromptBackend", "PromptBackend"]

_PROMPTS = TypeAdapter(list[Prompt])
_JSON = {"Content-Type": "application/json"}


class PromptBackend(ABC):
    @abstractmethod
    def create_version(self, name: str, body: PromptVersionCreate) -> tuple[Prompt, bool]: ...

    @abstractmethod
    def get(self, ref: str) -> Prompt: ...

    @abstractmethod
    def info(self, name: str) -> PromptInfo: ...

    @abstractmethod
    def list(self, max_results: int, page_token: str | None) -> Page[PromptInfo]: ...

    @abstractmethod
    def versions(self, name: str) -> list[Prompt]: ...

    @abstractmethod
    def set_label(self, ref: str, label: str) -> Prompt: ...

    @abstractmethod
    def delete_label(self, name: str, label: str) -> None: ...

    @abstractmethod
    def diff(self, old_ref: str, new_ref: str) -> PromptDiff: ...


class LocalPromptBackend(PromptBackend):
    """Runs the services in-process; labels move past ``gate`` (the evals domain's label rules,
    handed in by the ``Client`` because prompts may not import evals)."""

    def __init__(self, store: Store, gate: LabelGate) -> None:
        self.store = store
        self.gate = gate

    def create_version(self, name: str, body: PromptVersionCreate) -> tuple[Prompt, bool]:
        with self.store.write() as s:
            return services.create_version(s, name, body, created_by=current_user(), gate=self.gate)

    def get(self, ref: str) -> Prompt:
        with self.store.read() as s:
            return services.get_prompt(s, ref)

    def info(self, name: str) -> PromptInfo:
        with self.store.read() as s:
            return services.prompt_info(s, name)

    def list(self, max_results: int, page_token: str | None) -> Page[PromptInfo]:
        with self.store.read() as s:
            return services.list_prompts(s, max_results, page_token)

    def versions(self, name: str) -> list[Prompt]:
        with self.store.read() as s:
            return services.list_versions(s, name)

    def set_label(self, ref: str, label: str) -> Prompt:
        with self.store.write() as s:
            return services.set_label(s, ref, label, gate=self.gate)

    def delete_label(self, name: str, label: str) -> None:
        with self.store.write() as s:
            services.delete_label(s, name, label)

    def diff(self, old_ref: str, new_ref: str) -> PromptDiff:
        with self.store.read() as s:
            return services.diff_versions(s, old_ref, new_ref)


def _version_path(ref: str) -> str:
    parsed = parse_ref(ref, "prompt")
    selector = parsed.number if parsed.number is not None else parsed.alias
    return f"/api/prompts/{quote(parsed.name)}/versions/{quote(str(selector))}"


class HttpPromptBackend(PromptBackend):
    def __init__(self, transport: HttpTransport) -> None:
        self.http = transport

    def create_version(self, name: str, body: PromptVersionCreate) -> tuple[Prompt, bool]:
        response = self.http.request(
            "POST",
            f"/api/prompts/{quote(name)}/versions",
            content=body.model_dump_json(exclude_none=True),
            headers=_JSON,
            idempotent=False,
        )
        return Prompt.model_validate_json(response.content), response.status_code == 201

    def get(self, ref: str) -> Prompt:
        return Prompt.model_validate_json(self.http.request("GET", _version_path(ref)).content)

    def info(self, name: str) -> PromptInfo:
        raw = self.http.request("GET", f"/api/prompts/{quote(name)}").content
        return PromptInfo.model_validate_json(raw)

    def list(self, max_results: int, page_token: str | None) -> Page[PromptInfo]:
        params: dict[str, Any] = {"max_results": max_results}
        if page_token:
            params["page_token"] = page_token
        raw = self.http.request("GET", "/api/prompts", params=params).content
        return Page[PromptInfo].model_validate_json(raw)

    def versions(self, name: str) -> list[Prompt]:
        raw = self.http.request("GET", f"/api/prompts/{quote(name)}/versions").content
        return _PROMPTS.validate_json(raw)

    def set_label(self, ref: str, label: str) -> Prompt:
        version = self.get(ref)
        path = f"/api/prompts/{quote(version.name)}/labels/{quote(label)}"
        raw = self.http.request("PUT", path, json={"version": version.version}).content
        return Prompt.model_validate_json(raw)

    def delete_label(self, name: str, label: str) -> None:
        self.http.request("DELETE", f"/api/prompts/{quote(name)}/labels/{quote(label)}")

    def diff(self, old_ref: str, new_ref: str) -> PromptDiff:
        params = {"old": old_ref, "new": new_ref}
        raw = self.http.request("GET", "/api/prompt-diffs", params=params).content
        return PromptDiff.model_validate_json(raw)
