"""Which code a process may import when a request or a stored record names it.

Pipelines, tuning objectives, triggers and retraining policies name their code as
``MODULE:NAME`` or ``FILE.py:NAME``. In a user's own process (the CLI, the SDK, the embedded
store) that code is theirs, so anything goes (:data:`ANY_CODE`). A server in ``users`` mode runs
code for callers who do not own its machine: a maintainer who could name ``/tmp/x.py:run`` in a
request, or an editor who logs a run whose recorded target is such a path, would run arbitrary
code as the server. So such a server imports only modules under the prefixes its operator
allowed (``opsloop server --allow-code mypkg.flows``), never a file path; a run's own recorded
source tree stays usable through a clean-environment reproduction, which runs it in an
environment of its own rather than in the server's process.

Every place that loads named code takes a policy and calls :meth:`CodePolicy.check` first: the
server hands in its own; everything else keeps the default.
"""

from __future__ import annotations

from dataclasses import dataclass

from opsloop.config import Settings
from opsloop.errors import PermissionDenied

__all__ = ["ANY_CODE", "CodePolicy", "server_code_policy"]


@dataclass(frozen=True)
class CodePolicy:
    """The code a process imports by name.

    Attributes:
        modules: Dotted module prefixes that may be imported (``mypkg.flows`` allows
            ``mypkg.flows`` and ``mypkg.flows.daily``, not ``mypkg.flowsx``); None allows any
            module and any file.
    """

    modules: tuple[str, ...] | None = None

    @classmethod
    def parse(cls, allowed: str | None) -> CodePolicy:
        """A restricted policy from a comma-separated list of prefixes (None or empty: no
        module at all)."""
        prefixes = tuple(p.strip() for p in (allowed or "").split(",") if p.strip())
        return cls(prefixes)

    def check(self, target: str) -> None:
        """Nothing when ``target`` (``MODULE:NAME`` or ``FILE.py:NAME``) may be imported here;
        else ``PermissionDenied`` saying what this server runs."""
        if self.modules is None:
            return
        where = target.rpartition(":")[0] or target
        if where.endswith(".py") or "/" in where or "\\" in where:
            raise PermissionDenied(
                f"{target}: this server runs no file a request names, only modules on its "
                f"allow-list ({self._allowed()}); package the code as a module the server can "
                "import, or reproduce a recorded run in a clean environment"
            )
        if not any(where == m or where.startswith(m + ".") for m in self.modules):
            raise PermissionDenied(
                f"{target}: module {where!r} is not on this server's allow-list "
                f"({self._allowed()}); its operator adds it with `opsloop server --allow-code`"
            )

    def describe(self) -> str:
        """One line for a server's start-up banner."""
        if self.modules is None:
            return "any module or file a caller names"
        return f"modules under {self._allowed()} only" if self.modules else "none (no allow-list)"

    def _allowed(self) -> str:
        return ", ".join(self.modules or ()) or "empty"


ANY_CODE = CodePolicy()


def server_code_policy(settings: Settings) -> CodePolicy:
    """What a server started with ``settings`` imports: in ``users`` mode, or whenever an
    allow-list is set, only the allow-list's modules; otherwise (one shared token, or an open
    server on its owner's machine) whatever a caller names, as before roles existed."""
    if settings.auth_mode == "users" or settings.allow_code:
        return CodePolicy.parse(settings.allow_code)
    return ANY_CODE
