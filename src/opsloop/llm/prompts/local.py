"""The local prompt backend: the services in-process, one transaction per call."""

from __future__ import annotations

from opsloop.kernel.identity import current_user
from opsloop.kernel.paging import Page
from opsloop.kernel.store_calls import StoreCalls
from opsloop.llm.prompts import services
from opsloop.llm.prompts.backend import PromptBackend
from opsloop.llm.prompts.entities import Prompt
from opsloop.llm.prompts.entities import PromptDiff
from opsloop.llm.prompts.entities import PromptInfo
from opsloop.llm.prompts.entities import PromptVersionCreate
from opsloop.llm.prompts.ports import LabelGate
from opsloop.store.database import Store

__all__ = ["LocalPromptBackend"]


class LocalPromptBackend(StoreCalls, PromptBackend):
    """Runs the services in-process; labels move past ``gate`` (the evals domain's label rules,
    handed in by the ``Client`` because prompts may not import evals)."""

    def __init__(self, store: Store, gate: LabelGate) -> None:
        self.store = store
        self.gate = gate

    def create_version(self, name: str, body: PromptVersionCreate) -> tuple[Prompt, bool]:
        return self._write(
            services.create_version, name, body, created_by=current_user(), gate=self.gate
        )

    def get(self, ref: str) -> Prompt:
        return self._read(services.get_prompt, ref)

    def info(self, name: str) -> PromptInfo:
        return self._read(services.prompt_info, name)

    def list(self, max_results: int, page_token: str | None) -> Page[PromptInfo]:
        return self._read(services.list_prompts, max_results, page_token)

    def versions(self, name: str) -> list[Prompt]:
        return self._read(services.list_versions, name)

    def set_label(self, ref: str, label: str) -> Prompt:
        return self._write(services.set_label, ref, label, gate=self.gate)

    def delete_label(self, name: str, label: str) -> None:
        self._write(services.delete_label, name, label)

    def diff(self, old_ref: str, new_ref: str) -> PromptDiff:
        return self._read(services.diff_versions, old_ref, new_ref)
