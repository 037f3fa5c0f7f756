"""Reading a prediction request's body into a table, in the shapes people send.

``{"records": [{...}, ...]}`` (also MLflow's ``dataframe_records``), ``{"columns": {"a": [...],
...}}``, MLflow's ``{"dataframe_split": {"columns": [...], "data": [[...], ...]}}`` and
``{"instances": [...]}`` and MLflow's tensor input ``{"inputs": [...]}`` (records, or rows of
values: a tensor model's, or a table's columns in signature order), each of those two also as an
object of columns. Errors name what was expected, and the server answers them with 422 (400 at
MLflow's ``/invocations``).

MLflow's ``"params": {"predict_method": "predict_proba"}`` asks a classifier for its class
probabilities instead of its labels (:func:`predict_method`), on every inference path.
"""

from __future__ import annotations

from typing import Any

from opsloop.errors import InvalidInput

__all__ = ["MAX_ROWS", "PREDICT_METHODS", "predict_method", "read_rows"]

MAX_ROWS = 10_000
_SHAPES = "records, columns, dataframe_records, dataframe_split, instances or inputs"
_KEYS = ("records", "dataframe_records", "columns", "dataframe_split", "instances", "inputs")
PREDICT_METHODS = ("predict", "predict_proba")


def read_rows(body: Any) -> tuple[Any, int]:
    """The request's rows (records list, column dict or row arrays) and how many there are."""
    if not isinstance(body, dict):
        raise InvalidInput(f"the body must be a JSON object with one of: {_SHAPES}")
    keys = [k for k in _KEYS if k in body]
    if len(keys) != 1:
        raise InvalidInput(f"give exactly one of: {_SHAPES} (got {sorted(body) or 'nothing'})")
    key = keys[0]
    value = body[key]
    if key in ("instances", "inputs") and isinstance(value, dict):
        rows, count = _columns(key, value)
    elif key in ("records", "dataframe_records", "instances", "inputs"):
        if not isinstance(value, list) or not value:
            raise InvalidInput(f"{key} must be a non-empty list")
        rows = _rows_of_values(value) if key in ("instances", "inputs") else value
        count = len(value)
    elif key == "columns":
        rows, count = _columns(key, value)
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


def _columns(key: str, value: Any) -> tuple[Any, int]:
    """An object of column name to list of values, as a table."""
    if not isinstance(value, dict) or not value:
        raise InvalidInput(f"{key} must be an object of column name to list of values")
    lengths = {len(v) if isinstance(v, list) else -1 for v in value.values()}
    if len(lengths) != 1 or -1 in lengths or 0 in lengths:
        raise InvalidInput(f"every column of {key} must be a non-empty list, all of one length")
    import pandas as pd

    return pd.DataFrame(value), lengths.pop()


def _rows_of_values(value: list[Any]) -> Any:
    """Rows of numbers as an array, which a table model reads as its columns in signature order
    (what an MLflow client sends as ``inputs``) and a tensor model as is; anything else (records,
    mixed rows) goes on as sent, for the signature check to accept or name."""
    if not all(isinstance(row, list) for row in value):
        return value
    import numpy as np

    try:
        array = np.asarray(value)
    except ValueError:  # ragged rows: the signature check names the shape
        return value
    return array if array.dtype.kind in "biuf" else value


def predict_method(body: dict[str, Any]) -> str:
    """What the caller asks of the model: MLflow's ``params.predict_method`` (``predict``, the
    default, or ``predict_proba``). Other params are refused: opsloop's models take none."""
    params = body.get("params")
    if params is None:
        return "predict"
    if not isinstance(params, dict):
        raise InvalidInput('params must be an object, e.g. {"predict_method": "predict_proba"}')
    unknown = sorted(set(params) - {"predict_method"})
    if unknown:
        raise InvalidInput(f"unknown params {unknown}: the only one taken is predict_method")
    method = params.get("predict_method", "predict")
    if method not in PREDICT_METHODS:
        raise InvalidInput(
            f"predict_method {method!r} is not supported: use {' or '.join(PREDICT_METHODS)}"
        )
    return str(method)
