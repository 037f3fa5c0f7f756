"""Reading a prediction request's body into a table, in the shapes people send.

``{"records": [{...}, ...]}`` (also MLflow's ``dataframe_records``), ``{"columns": {"a": [...],
...}}``, MLflow's ``{"dataframe_split": {"columns": [...], "data": [[...], ...]}}`` and
``{"instances": [...]}`` (records, or rows of values for tensor models). Errors name what was
expected, and the server answers them with 422.
"""

from __future__ import annotations

from typing import Any

from opsloop.errors import InvalidInput

__all__ = ["MAX_ROWS", "read_rows"]

MAX_ROWS = 10_000
_SHAPES = "records, columns, dataframe_records, dataframe_split or instances"


def read_rows(body: Any) -> tuple[Any, int]:
    """The request's rows (records list, column dict or row arrays) and how many there are."""
    if not isinstance(body, dict):
        raise InvalidInput(f"the body must be a JSON object with one of: {_SHAPES}")
    keys = [k for k in ("records", "dataframe_records", "columns", "dataframe_split", "instances")
            if k in body]  # fmt: skip
    if len(keys) != 1:
        raise InvalidInput(f"give exactly one of: {_SHAPES} (got {sorted(body) or 'nothing'})")
    key = keys[0]
    value = body[key]
    if key in ("records", "dataframe_records", "instances"):
        if not isinstance(value, list) or not value:
            raise InvalidInput(f"{key} must be a non-empty list")
        rows: Any = value
        count = len(value)
    elif key == "columns":
        if not isinstance(value, dict) or not value:
            raise InvalidInput("columns must be an object of column name to list of values")
        lengths = {len(v) if isinstance(v, list) else -1 for v in value.values()}
        if len(lengths) != 1 or -1 in lengths:
            raise InvalidInput("every column must be a list, all of the same length")
        import pandas as pd

        rows, count = pd.DataFrame(value), lengths.pop()
    else:
        if not isinstance(value, dict) or "columns" not in value or "data" not in value:
            raise InvalidInput("dataframe_split needs columns and data")
        import pandas as pd

        try:
            rows = pd.DataFrame(value["data"], columns=value["columns"])
        except (ValueError, TypeError) as exc:
            raise InvalidInput(f"dataframe_split: {exc}") from None
        count = len(rows)
    if count > MAX_ROWS:
        raise InvalidInput(f"{count} rows in one request; at most {MAX_ROWS} (use batch inference)")
    return rows, count
