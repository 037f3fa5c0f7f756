"""What an import did: counts per kind (copied now, already there) and what it could not map."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from dataclasses import field
from typing import Any

from opsloop.app.mlflow_import.source import Skipped

__all__ = ["KINDS", "ImportReport"]

# The kinds the closing table lists, in this order.
KINDS = (
    "experiments",
    "runs",
    "params",
    "metric values",
    "tags",
    "artifacts",
    "datasets",
    "models",
    "versions",
    "aliases",
)


@dataclass
class ImportReport:
    source: str
    copied: Counter[str] = field(default_factory=Counter)
    already: Counter[str] = field(default_factory=Counter)
    skipped: list[Skipped] = field(default_factory=list)
    conflicts: list[Skipped] = field(default_factory=list)

    @property
    def copied_nothing(self) -> bool:
        return not any(self.copied.values())

    def rows(self) -> list[tuple[str, int, int]]:
        return [(kind, self.copied[kind], self.already[kind]) for kind in KINDS]

    def grouped_skips(self) -> list[tuple[str, str, int, str]]:
        """(kind, reason, how many, first example), one row per distinct reason."""
        groups: dict[tuple[str, str], list[str]] = {}
        for item in self.skipped:
            groups.setdefault((item.kind, item.reason), []).append(item.what)
        return [(kind, why, len(whats), whats[0]) for (kind, why), whats in groups.items()]

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "copied": {kind: self.copied[kind] for kind in KINDS},
            "already_there": {kind: self.already[kind] for kind in KINDS},
            "conflicts": [vars(c) for c in self.conflicts],
            "not_mapped": [vars(s) for s in self.skipped],
        }
