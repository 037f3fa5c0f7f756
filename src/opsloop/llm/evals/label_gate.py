"""The evals domain's answer to the prompt registry's ``LabelGate``: label rules.

Prompts declares the gate and evals implements it, so the import goes from evals down to
prompts and never back up. The ``Client`` hands an instance to its local prompt backend; the
server installs the class as the override of ``opsloop.llm.prompts.api.label_gate`` (FastAPI
builds one per request, hence no constructor arguments). It matches the protocol by shape, not
by subclassing: a ``Protocol`` base would give it an ``(*args, **kwargs)`` constructor that
FastAPI would read as query parameters.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from opsloop.llm.evals.services import check_label_rule

__all__ = ["LabelRuleGate"]


class LabelRuleGate:
    """Lets a label move only to a version that passed the eval suite its rule requires."""

    def check(self, session: Session, prompt_name: str, number: int, label: str) -> None:
        check_label_rule(session, prompt_name, number, label)
