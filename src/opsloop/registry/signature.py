"""Model signatures: what a model takes and returns, inferred from example data, enforced at
predict time.

A schema is either a table (named, typed columns: ``integer``, ``float``, ``boolean``,
``string``, ``datetime``) or a tensor (a NumPy dtype and a shape where ``-1`` is "any size").
``coerce_input`` turns what a caller passes (a DataFrame, records, a dict of columns, an
array) into exactly what the model was trained on, or raises ``InvalidInput`` naming the column
and the type it expected, so a bad request fails with a message instead of deep in NumPy.
"""

from __future__ import annotations

from typing import Any
from typing import Literal

from pydantic import BaseModel
from pydantic import ConfigDict
from pydantic import Field

from opsloop.errors import InvalidInput

__all__ = [
    "ColumnSpec",
    "Schema",
    "Signature",
    "TensorSpec",
    "coerce_input",
    "infer_schema",
    "infer_signature",
]

ColumnType = Literal["integer", "float", "boolean", "string", "datetime"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class ColumnSpec(_Frozen):
    name: str
    type: ColumnType
    nullable: bool = False


class TensorSpec(_Frozen):
    dtype: str
    shape: list[int] = Field(description="-1 where any size is accepted (the batch axis)")


class Schema(_Frozen):
    """Named, typed columns (a table) or one tensor."""

    columns: list[ColumnSpec] | None = None
    tensor: TensorSpec | None = None

    def describe(self) -> str:
        if self.columns is not None:
            return ", ".join(f"{c.name}: {c.type}" for c in self.columns)
        assert self.tensor is not None
        return f"tensor {self.tensor.dtype}{self.tensor.shape}"


class Signature(_Frozen):
    inputs: Schema
    outputs: Schema | None = None


def _column_type(series: Any) -> ColumnType:
    import pandas as pd

    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return "boolean"
    if pd.api.types.is_integer_dtype(dtype):
        return "integer"
    if pd.api.types.is_float_dtype(dtype):
        return "float"
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "datetime"
    values = series.dropna()
    if len(values) and not all(isinstance(v, str) for v in values.head(1000)):
        raise InvalidInput(
            f"column {series.name!r} mixes types ({dtype}); a signature needs one type a column"
        )
    return "string"


def infer_schema(data: Any) -> Schema:
    """The schema of example data: a DataFrame, records, a dict of columns, an array, a Series."""
    import numpy as np
    import pandas as pd

    if isinstance(data, pd.Series):
        data = data.to_frame(name=str(data.name) if data.name is not None else "value")
    if isinstance(data, list | dict) and not isinstance(data, np.ndarray):
        data = _frame(data)
    if isinstance(data, pd.DataFrame):
        return Schema(
            columns=[
                ColumnSpec(
                    name=str(name),
                    type=_column_type(data[name]),
                    nullable=bool(data[name].isna().any()),
                )
                for name in data.columns
            ]
        )
    array = np.asarray(data)
    if array.dtype == object:
        raise InvalidInput("cannot infer a signature from an object array; pass a DataFrame")
    return Schema(tensor=TensorSpec(dtype=str(array.dtype), shape=[-1, *array.shape[1:]]))


def infer_signature(inputs: Any, outputs: Any = None) -> Signature:
    """A signature from example inputs and (optionally) the model's outputs on them."""
    return Signature(
        inputs=infer_schema(inputs), outputs=None if outputs is None else infer_schema(outputs)
    )


def _frame(data: Any) -> Any:
    import pandas as pd

    try:
        if isinstance(data, dict):
            if all(not isinstance(v, list | tuple) for v in data.values()):
                return pd.DataFrame([data])  # one record
            return pd.DataFrame(data)
        if data and all(isinstance(r, dict) for r in data):
            return pd.DataFrame.from_records(data)
    except ValueError as exc:
        raise InvalidInput(f"cannot read the input as a table: {exc}") from exc
    raise InvalidInput(
        "a table input is a DataFrame, a list of records (dicts) or a dict of equal-length columns"
    )


def coerce_input(data: Any, schema: Schema) -> Any:
    """``data`` converted to what the model expects; ``InvalidInput`` naming what is wrong."""
    if schema.columns is not None:
        return _coerce_table(data, schema.columns)
    assert schema.tensor is not None
    return _coerce_tensor(data, schema.tensor)


def _coerce_table(data: Any, columns: list[ColumnSpec]) -> Any:
    import numpy as np
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        frame = data
    elif isinstance(data, np.ndarray):
        if data.ndim != 2 or data.shape[1] != len(columns):
            raise InvalidInput(
                f"expected a table with {len(columns)} columns "
                f"({', '.join(c.name for c in columns)}), got an array of shape {data.shape}"
            )
        frame = pd.DataFrame(data, columns=[c.name for c in columns])
    else:
        frame = _frame(data)
    missing = [c for c in columns if c.name not in frame.columns]
    if missing:
        shown = ", ".join(f"{c.name!r} ({c.type})" for c in missing[:5])
        raise InvalidInput(
            f"input is missing {len(missing)} column(s): {shown}",
            details={"missing": [c.name for c in missing]},
        )
    names = [c.name for c in columns]
    converted = {}
    for spec in columns:
        column = frame[spec.name]
        coerced = _coerce_column(column, spec)
        if coerced is not column:
            converted[spec.name] = coerced
    if not converted and list(frame.columns) == names:
        return frame  # already exactly what the model takes: the single-row fast path
    out = frame[names].copy()
    for name, column in converted.items():
        out[name] = column
    return out


def _bad_column(spec: ColumnSpec, got: str, example: Any = None) -> InvalidInput:
    shown = f" (e.g. {example!r})" if example is not None else ""
    return InvalidInput(
        f"column {spec.name!r} expects {spec.type}, got {got}{shown}",
        details={"column": spec.name, "expected": spec.type, "got": got},
    )


def _coerce_column(series: Any, spec: ColumnSpec) -> Any:
    import numpy as np
    import pandas as pd

    dtype = series.dtype
    if spec.type == "float" and dtype == np.float64:
        return series  # NaN is a float: nothing to check
    nulls = series.isna()
    if nulls.any() and not spec.nullable and spec.type != "float":
        row = int(np.flatnonzero(nulls.to_numpy())[0])
        raise InvalidInput(
            f"column {spec.name!r} ({spec.type}) has a missing value at row {row}",
            details={"column": spec.name, "expected": spec.type, "row": row},
        )
    if spec.type == "float":
        if pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype):
            return series.astype("float64")
        converted = pd.to_numeric(series, errors="coerce")
        bad = converted.isna() & ~nulls
        if bad.any():
            raise _bad_column(spec, str(dtype), series[bad].iloc[0])
        return converted.astype("float64")
    if spec.type == "integer":
        if pd.api.types.is_integer_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype):
            return series
        converted = pd.to_numeric(series, errors="coerce")
        bad = (converted.isna() & ~nulls) | (converted.notna() & (converted % 1 != 0))
        if bad.any() or pd.api.types.is_bool_dtype(dtype):
            example = series[bad].iloc[0] if bad.any() else series.iloc[0]
            raise _bad_column(spec, str(dtype), example)
        return converted.astype("int64") if not nulls.any() else converted
    if spec.type == "boolean":
        if pd.api.types.is_bool_dtype(dtype):
            return series
        values = series.dropna()
        if not values.isin([True, False, 0, 1]).all():
            raise _bad_column(spec, str(dtype), values[~values.isin([True, False, 0, 1])].iloc[0])
        return series.astype(bool)
    if spec.type == "datetime":
        try:
            return pd.to_datetime(series)
        except (ValueError, TypeError) as exc:
            raise _bad_column(spec, str(dtype)) from exc
    values = series.dropna()
    wrong = values[~values.map(lambda v: isinstance(v, str))]
    if len(wrong):
        raise _bad_column(spec, type(wrong.iloc[0]).__name__, wrong.iloc[0])
    return series


def _coerce_tensor(data: Any, spec: TensorSpec) -> Any:
    import numpy as np

    try:
        array = np.asarray(data)
    except (ValueError, TypeError) as exc:
        raise InvalidInput(f"cannot read the input as a {spec.dtype} tensor: {exc}") from exc
    if hasattr(data, "to_numpy"):
        array = data.to_numpy()
    if array.ndim == len(spec.shape) - 1:
        array = array.reshape(1, *array.shape)  # one example without its batch axis
    if array.ndim != len(spec.shape) or any(
        want not in (-1, got) for want, got in zip(spec.shape, array.shape, strict=True)
    ):
        raise InvalidInput(
            f"expected a tensor of shape {spec.shape} (-1: any), got {list(array.shape)}",
            details={"expected_shape": spec.shape, "got_shape": list(array.shape)},
        )
    want = np.dtype(spec.dtype)
    if array.dtype != want:
        if array.dtype == object or not np.can_cast(array.dtype, want, casting="same_kind"):
            raise InvalidInput(
                f"expected a tensor of {spec.dtype}, got {array.dtype}",
                details={"expected": spec.dtype, "got": str(array.dtype)},
            )
        array = array.astype(want)
    return array
