"""The local prompt backend: the services in-process, one transaction per call."""

from __future__ import annotations

from opsloop.kernel.identity import current_user
from opsloop.kernel.paging import Page
from opsloop.llm.prompts import services
from opsloop.llm.prompts.backend import PromptBackend
from opsloop.llm.prompts.entities import Prompt
from opsloop.llm.prompts.entities import PromptDiff
from opsloop.llm.prompts.entities import PromptInfo
from opsloop.llm.prompts.entities import PromptVersionCreate
from opsloop.llm.prompts.ports import LabelGate
from opsloop.store.database import Store

__all__ = ["LocalPromptBackend"]


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
