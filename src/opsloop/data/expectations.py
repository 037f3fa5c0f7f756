"""Declarative expectations for tables, checked with DuckDB, with reports that name rows.

An expectation file (YAML or JSON) says what a table must look like::

    row_count: {min: 100, max: 1000000}
    columns:
      age: {type: integer, nullable: false, min: 0, max: 120}
      country: {allowed: [DE, FR, US]}
      email: {unique: true, pattern: "^[^@]+@[^@]+$"}
    sql:
      - name: no_future_signups
        query: SELECT * FROM data WHERE signup_date > current_date
    no_pii: [EMAIL_ADDRESS, PHONE_NUMBER, CREDIT_CARD]

Every row a ``sql`` query returns is a failure; the table is the view ``data``. Unknown keys
are refused (a misspelt check must not pass silently). Failing rows are reported by their
0-based position in the table, with the offending value, up to ``SAMPLE`` per check.
``no_pii`` fails when any text-like column holds one of the named entities (see
``opsloop.data.pii_scan``); its samples are masked, since reports are stored and shown.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic import ConfigDict
from pydantic import Field
from pydantic import ValidationError

from opsloop.console.files import yaml_problem
from opsloop.data.tabular import TABLE_VIEW
from opsloop.data.tabular import open_table
from opsloop.errors import InvalidInput
from opsloop.errors import NotFound

__all__ = ["SAMPLE", "Expectations", "load_expectations", "run_expectations"]

SAMPLE = 20
_NUMBERED = "__opsloop_numbered"
_TYPE_FAMILIES = {
    "integer": {
        "TINYINT",
        "SMALLINT",
        "INTEGER",
        "BIGINT",
        "HUGEINT",
        "UTINYINT",
        "USMALLINT",
        "UINTEGER",
        "UBIGINT",
        "UHUGEINT",
    },
    "float": {"FLOAT", "DOUBLE", "REAL"},
    "string": {"VARCHAR"},
    "boolean": {"BOOLEAN"},
    "date": {"DATE"},
    "timestamp": {
        "TIMESTAMP",
        "TIMESTAMP WITH TIME ZONE",
        "TIMESTAMP_NS",
        "TIMESTAMP_MS",
        "TIMESTAMP_S",
    },
}
_TYPE_FAMILIES["number"] = _TYPE_FAMILIES["integer"] | _TYPE_FAMILIES["float"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ColumnExpectation(_Strict):
    type: str | None = Field(
        None,
        description="integer, float, number, string, boolean, "
        "date, timestamp, or an exact DuckDB type such as DECIMAL(10,2)",
    )
    nullable: bool = True
    min: float | None = None
    max: float | None = None
    allowed: list[Any] | None = None
    unique: bool = False
    pattern: str | None = None


class RowCount(_Strict):
    min: int | None = None
    max: int | None = None


class SqlCheck(_Strict):
    name: str
    query: str


class Expectations(_Strict):
    row_count: RowCount | None = None
    columns: dict[str, ColumnExpectation] = Field(default_factory=dict)
    sql: list[SqlCheck] = Field(default_factory=list)
    no_pii: list[str] | None = Field(
        None, description="PII entities no column may hold (EMAIL_ADDRESS, PHONE_NUMBER...)"
    )


def load_expectations(source: str | Path | dict[str, Any]) -> Expectations:
    """Parse expectations from a YAML/JSON file or a dict; unknown checks are refused."""
    if isinstance(source, dict):
        raw: Any = source
        where = "expectations"
    else:
        path = Path(source)
        try:
            text = path.read_text()
        except FileNotFoundError:
            raise NotFound(f"no expectation file at {path}") from None
        except OSError as exc:
            raise InvalidInput(f"cannot read {path}: {exc.strerror}") from None
        raw = _parse_text(text, path)
        where = str(path)
    try:
        parsed = Expectations.model_validate(raw or {})
    except ValidationError as exc:
        problems = []
        for error in exc.errors()[:5]:
            loc = ".".join(str(p) for p in error["loc"])
            if error["type"] == "extra_forbidden":
                problems.append(f"unknown check {loc!r}")
            else:
                problems.append(f"{loc}: {error['msg']}")
        known = ", ".join(ColumnExpectation.model_fields)
        raise InvalidInput(
            f"{where}: " + "; ".join(problems) + f" (column checks: {known}; "
            "table checks: row_count {min, max}, sql [{name, query}], no_pii [ENTITY, ...])"
        ) from None
    _check_no_pii(parsed, where)
    return parsed


def _check_no_pii(expectations: Expectations, where: str) -> None:
    """Entity names spelt as the detector knows them; an unknown one is refused on load,
    before a version is added or any data is read."""
    if expectations.no_pii is None:
        return
    from opsloop.governance.pii import check_entities

    try:
        expectations.no_pii = list(check_entities(expectations.no_pii))
    except InvalidInput as exc:
        raise InvalidInput(f"{where}: no_pii: {exc.message}") from None


def _parse_text(text: str, path: Path) -> Any:
    if path.suffix.lower() == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise InvalidInput(f"{path} is not valid JSON: {exc}") from None
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidInput(f"{path} is not valid YAML: {yaml_problem(exc)}") from None


def run_expectations(files: list[str], fmt: str, expectations: Expectations) -> dict[str, Any]:
    """Check a table; the report lists every check with its verdict and failing rows."""
    with open_table(files, fmt) as con:
        con.execute(
            f"CREATE TEMP VIEW {_NUMBERED} AS "
            f"SELECT row_number() OVER () - 1 AS __row, * FROM {TABLE_VIEW}"
        )
        rows = con.execute(f"SELECT count(*) FROM {TABLE_VIEW}").fetchone()[0]
        types = {row[0]: row[1] for row in con.execute(f"DESCRIBE {TABLE_VIEW}").fetchall()}
        checks: list[dict[str, Any]] = []
        if expectations.row_count:
            checks.append(_row_count(rows, expectations.row_count))
        for column, spec in expectations.columns.items():
            checks.extend(_column_checks(con, column, spec, types))
        for sql in expectations.sql:
            checks.append(_sql_check(con, sql))
        if expectations.no_pii is not None:
            _check_no_pii(expectations, "expectations")
            checks.append(_no_pii_check(con, expectations.no_pii))
    failed = [c for c in checks if not c["passed"]]
    return {
        "passed": not failed,
        "rows": rows,
        "checks_run": len(checks),
        "checks_failed": len(failed),
        "checks": checks,
    }


def _result(check: str, passed: bool, message: str, **extra: Any) -> dict[str, Any]:
    return {"check": check, "passed": passed, "message": message, **extra}


def _row_count(rows: int, spec: RowCount) -> dict[str, Any]:
    low = spec.min if spec.min is not None else 0
    high = spec.max if spec.max is not None else float("inf")
    ok = low <= rows <= high
    shown = ["-" if bound is None else bound for bound in (spec.min, spec.max)]
    bounds = f"[{shown[0]}, {shown[1]}]"
    return _result("row_count", ok, f"{rows} rows, expected within {bounds}")


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _column_checks(
    con: Any, column: str, spec: ColumnExpectation, types: dict[str, str]
) -> list[dict[str, Any]]:
    name = f"columns.{column}"
    if column not in types:
        return [_result(f"{name}.exists", False, f"column {column!r} is missing", column=column)]
    results = []
    actual = types[column]
    if spec.type is not None:
        family = _TYPE_FAMILIES.get(spec.type.lower())
        ok = actual in family if family else actual.upper() == spec.type.upper()
        results.append(
            _result(f"{name}.type", ok, f"type is {actual}, expected {spec.type}", column=column)
        )
    c = _quote(column)
    conditions: list[tuple[str, str, list[Any], str]] = []
    if not spec.nullable:
        conditions.append(("nullable", f"{c} IS NULL", [], "null values"))
    if spec.min is not None:
        conditions.append(("min", f"{c} < ?", [spec.min], f"values below {spec.min:g}"))
    if spec.max is not None:
        conditions.append(("max", f"{c} > ?", [spec.max], f"values above {spec.max:g}"))
    if spec.allowed is not None:
        conditions.append(
            (
                "allowed",
                f"{c} IS NOT NULL AND NOT list_contains(?, {c})",
                [spec.allowed],
                f"values outside {spec.allowed}",
            )
        )
    if spec.pattern is not None:
        conditions.append(
            (
                "pattern",
                f"{c} IS NOT NULL AND NOT regexp_matches(CAST({c} AS VARCHAR), ?)",
                [spec.pattern],
                f"values not matching {spec.pattern!r}",
            )
        )
    if spec.unique:
        conditions.append(
            (
                "unique",
                f"{c} IS NOT NULL AND count(*) OVER (PARTITION BY {c}) > 1",
                [],
                "duplicated values",
            )
        )
    for check, condition, params, what in conditions:
        results.append(_failing_rows(con, f"{name}.{check}", column, condition, params, what))
    return results


def _failing_rows(
    con: Any, check: str, column: str, condition: str, params: list[Any], what: str
) -> dict[str, Any]:
    import duckdb

    where = f"SELECT __row, {_quote(column)} AS value FROM {_NUMBERED}"
    if "OVER" in condition:  # window conditions filter in QUALIFY
        query = f"{where} QUALIFY {condition} ORDER BY __row"
    else:
        query = f"{where} WHERE {condition} ORDER BY __row"
    try:
        count = con.execute(f"SELECT count(*) FROM ({query})", params).fetchone()[0]
        sample = con.execute(f"{query} LIMIT {SAMPLE}", params).fetchall()
    except duckdb.Error as exc:
        raise InvalidInput(f"check {check} cannot run: {str(exc).splitlines()[0]}") from None
    return _result(
        check,
        count == 0,
        f"{count} rows with {what}" if count else "ok",
        column=column,
        failing_rows=count,
        sample=[{"row": r, "value": _jsonable(v)} for r, v in sample],
    )


def _sql_check(con: Any, sql: SqlCheck) -> dict[str, Any]:
    import duckdb

    try:
        count = con.execute(f"SELECT count(*) FROM ({sql.query})").fetchone()[0]
        cursor = con.execute(f"SELECT * FROM ({sql.query}) LIMIT {SAMPLE}")
        names = [d[0] for d in cursor.description]
        sample = cursor.fetchall()
    except duckdb.Error as exc:
        raise InvalidInput(
            f"sql check {sql.name!r} cannot run: {str(exc).splitlines()[0]}"
        ) from None
    return _result(
        f"sql.{sql.name}",
        count == 0,
        f"{count} rows returned" if count else "ok",
        failing_rows=count,
        sample=[{k: _jsonable(v) for k, v in zip(names, row, strict=True)} for row in sample],
    )


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def _no_pii_check(con: Any, entities: list[str]) -> dict[str, Any]:
    """Every text-like column scanned for the entities; samples (row, column, entity, masked
    value) in row order, so the report never stores a found value in full."""
    from opsloop.data.pii_scan import detector_for
    from opsloop.data.pii_scan import scan_connection

    report = scan_connection(con, detector_for(entities), samples=SAMPLE)
    sample = sorted(
        (
            {"row": s["row"], "column": c["column"], "entity": entity, "value": s["value"]}
            for c in report["columns"]
            for entity, hit in c["entities"].items()
            for s in hit["samples"]
        ),
        key=lambda s: s["row"],
    )[:SAMPLE]
    where = [
        f"{hit['rows']} {entity} in {c['column']}"
        for c in report["columns"]
        for entity, hit in c["entities"].items()
    ]
    count = report["rows_with_pii"]
    return _result(
        "no_pii",
        count == 0,
        f"{count} rows with PII: {', '.join(where)}" if count else "ok",
        failing_rows=count,
        sample=sample,
    )
