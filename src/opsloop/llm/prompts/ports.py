"""What the prompt registry needs from the domains above it, declared here and handed in.

A label such as ``production`` can be guarded by a rule the evals domain owns: the version must
have passed an eval suite first. Evals sits on a higher floor than prompts, so prompts may not
import it to look the rule up. Instead every path that moves a label takes a ``LabelGate``, and
whoever assembles the application (the ``Client``, the server) hands in the evals one.
"""

from __future__ import annotations

from typing import Protocol

from sqlalchemy.orm import Session

__all__ = ["LabelGate"]


class LabelGate(Protocol):
    """Decides whether a label may point at a prompt version, before the label moves."""

    def check(self, session: Session, prompt_name: str, number: int, label: str) -> None:
        """Return if ``label`` may point at ``prompt_name@number``; raise ``Conflict`` (saying
        what to do first) if not. Runs in the caller's transaction and never commits."""
        ...
