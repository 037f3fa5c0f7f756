"""Scanning a table version for personal data: entities per column, with masked samples.

The detector lives in governance (the lowest domain, so masking at ingest can use the same
one); this module only reads the table. DuckDB streams the rows in batches (a version larger
than memory scans in constant memory), every text-like column cast to text: strings, integers
(a card or phone number stored as a number is still one), and nested JSON values. Floats,
booleans, dates and times cannot hold the entities and are skipped. A report never carries a
found value in full: samples are masked (``j***@e***.com``), since reports are printed, kept
as validation results in the metadata store, and sent over HTTP.
"""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Sequence
from typing import Any

from opsloop.data.progress import progress_bar
from opsloop.data.tabular import TABLE_VIEW
from opsloop.data.tabular import open_table
from opsloop.errors import InvalidInput

__all__ = ["ENGINES", "detector_for", "scan_connection", "scan_table"]

ENGINES = ("opsloop", "presidio")
BATCH = 8192
_SKIPPED_TYPES = ("BOOLEAN", "DATE", "TIME", "TIMESTAMP", "FLOAT", "DOUBLE", "REAL", "DECIMAL",
                  "INTERVAL", "BLOB", "UUID")  # fmt: skip


def detector_for(entities: Iterable[str] | None, engine: str = "opsloop") -> Any:
    """Our detector, or Presidio's recognizers on a blank spaCy pipeline."""
    if engine == "opsloop":
        from opsloop.governance.pii import PiiDetector

        return PiiDetector(entities)
    if engine == "presidio":
        from opsloop.governance.pii_presidio import PresidioDetector

        return PresidioDetector(entities)
    raise InvalidInput(f"unknown PII engine {engine!r}; choose {' or '.join(ENGINES)}")


def scan_table(
    files: Sequence[str],
    fmt: str,
    entities: Iterable[str] | None = None,
    *,
    engine: str = "opsloop",
    samples: int = 3,
    progress: bool = False,
    label: str = "table",
) -> dict[str, Any]:
    """Scan a table's files (see ``scan_connection`` for the report)."""
    if samples < 0:
        raise InvalidInput(f"samples must be 0 or more, not {samples}")
    detector = detector_for(entities, engine)  # a bad entity fails before any data is read
    with open_table(files, fmt) as con:
        report = scan_connection(con, detector, samples=samples, progress=progress, label=label)
    report["engine"] = engine
    return report


def scan_connection(
    con: Any, detector: Any, *, samples: int = 3, progress: bool = False, label: str = "table"
) -> dict[str, Any]:
    """Scan the view ``data`` on ``con``. The report: ``rows``; ``entities`` checked;
    ``columns``, one entry per scanned column with, per entity found, how many rows hold it
    and up to ``samples`` of them (0-based row, masked value); ``found``, rows per entity over
    all columns (a row counted once per column); ``skipped``, columns of types that cannot
    hold the entities; ``rows_with_pii``, rows with any finding; ``notes`` on what the
    detector cannot find."""
    from opsloop.governance.pii import mask

    described = con.execute(f"DESCRIBE {TABLE_VIEW}").fetchall()
    scanned = [(str(n), str(t)) for n, t, *_ in described if not str(t).startswith(_SKIPPED_TYPES)]
    skipped = [str(n) for n, t, *_ in described if str(t).startswith(_SKIPPED_TYPES)]
    rows = con.execute(f"SELECT count(*) FROM {TABLE_VIEW}").fetchone()[0]
    per_column: list[dict[str, dict[str, Any]]] = [{} for _ in scanned]
    rows_with_pii = 0
    if scanned:
        select = ", ".join(
            f'CAST("{n.replace(chr(34), chr(34) * 2)}" AS VARCHAR)' for n, _ in scanned
        )
        cursor = con.execute(f"SELECT {select} FROM {TABLE_VIEW}")
        names = [n for n, _ in scanned]
        row = 0
        with progress_bar(f"scanning {label}", rows, unit="rows", enabled=progress) as advance:
            while batch := cursor.fetchmany(BATCH):
                for values in batch:
                    hit = False
                    for i, value in enumerate(values):
                        if value is None:
                            continue
                        findings = detector.find(value, column=names[i])
                        if findings:
                            hit = True
                            _record(per_column[i], findings, row, samples, mask)
                    rows_with_pii += hit
                    row += 1
                advance(len(batch))
    columns = []
    found: dict[str, int] = {}
    for (name, duck_type), hits in zip(scanned, per_column, strict=True):
        columns.append({"column": name, "type": duck_type, "entities": hits})
        for entity, hit in hits.items():
            found[entity] = found.get(entity, 0) + hit["rows"]
    notes = list(getattr(detector, "notes", ()))
    return {
        "rows": rows,
        "rows_with_pii": rows_with_pii,
        "entities": list(detector.entities),
        "columns": columns,
        "found": found,
        "skipped": skipped,
        "notes": notes,
    }


def _record(
    hits: dict[str, dict[str, Any]], findings: list[Any], row: int, samples: int, mask: Any
) -> None:
    seen = set()
    for f in findings:
        if f.entity in seen:  # a row counts once per entity, showing its first value
            continue
        seen.add(f.entity)
        hit = hits.setdefault(f.entity, {"rows": 0, "samples": []})
        hit["rows"] += 1
        if len(hit["samples"]) < samples:
            hit["samples"].append({"row": row, "value": mask(f.text, f.entity)})
