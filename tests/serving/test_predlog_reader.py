"""The prediction log read without its writing side: ``PredictionReader``.

A monitor check only reads the log, so the client hands it a reader over the log's folder
instead of the deployments' own log (which opens two journals and a sealing thread). The reader
must see exactly the rows the log sees: sealed Parquet files (with and without the later
``proba`` column), this process's live journal and a dead process's journal, with the labels
joined; and ``request_columns`` must give the columns ``requests`` gives, with neither pandas
nor pyarrow imported.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from opsloop.serving.predlog import PredictionLog
from opsloop.serving.predlog import PredictionReader

BASE = 1_700_000_000_000


def _row(i: int, **more: Any) -> dict[str, Any]:
    return {"request_id": f"r{i}", "deployment": "d", "model": "m", "version": 1 + i % 2,
            "ts_ms": BASE + i * 1000, "latency_ms": 1.0 + i, "shadow": i == 3,
            "error": "boom" if i == 4 else None, "inputs": {"records": [{"x": i, "y": i / 3}]},
            "outputs": [i % 2], "proba": [0.25 * (i % 4)], **more}  # fmt: skip


def _same(value: Any, other: Any) -> bool:
    """Equal, where pandas' NaN for a missing value counts as None."""
    missing = (value is None or value != value, other is None or other != other)
    return missing == (True, True) or (not any(missing) and value == other)


def _fill(folder: Path) -> PredictionLog:
    """Rows in every place a reader must look: an older sealed file without ``proba``, a newer
    sealed file, a dead process's journal and this process's live journal, with labels."""
    log = PredictionLog(folder, interval=3600)
    for i in range(3):
        log.log(_row(i))
    log.flush()
    (old,) = sorted(folder.glob("predictions/deployment=d/date=*/*.parquet"))
    pq.write_table(pq.read_table(old).drop_columns(["proba"]), old)
    for i in range(3, 6):
        log.log(_row(i))
    log.label("d", "r1", 1)
    log.flush()
    dead = folder / "predictions-999999999-deadbeef.journal"  # no such process
    dead.write_text(json.dumps({**_row(6), "inputs": '{"records": [{"x": 6}]}',
                                "outputs": "[0]", "proba": "[0.5]"}) + "\n")  # fmt: skip
    log.log(_row(7))
    log.label("d", "r7", 0)
    return log


def test_the_reader_gives_the_rows_the_log_gives(tmp_path: Path) -> None:
    folder = tmp_path / "predictions"
    log = _fill(folder)
    try:
        files = sorted(p.name for p in folder.rglob("*"))
        reader = PredictionReader(folder)
        for query in ({}, {"last": 3}, {"first": 2}, {"since_ms": BASE + 2000},
                      {"since_ms": BASE + 1000, "until_ms": BASE + 6000}):  # fmt: skip
            frame = log.requests("d", **query)
            columns = reader.request_columns("d", **query)
            assert list(columns) == [str(c) for c in frame.columns]
            for name, values in columns.items():
                expected = frame[name].tolist()
                assert len(values) == len(expected), (query, name)
                assert all(map(_same, values, expected)), (query, name, values, expected)
        assert columns["request_id"] == ["r1", "r2", "r4", "r5"]  # r3 is a shadow answer
        assert reader.request_columns("d")["label"][-2:] == [None, "0"]  # r6 unlabelled, r7 "0"
        assert reader.request_columns("d")["proba"][:3] == [None, None, None]  # the old file
        empty = reader.request_columns("nobody")
        assert set(empty) == set(columns) and not any(empty.values())
        assert sorted(p.name for p in folder.rglob("*")) == files  # it wrote nothing
        assert math.isclose(frame["latency_ms"].sum(), sum(columns["latency_ms"]))
    finally:
        log.close()


def test_reading_columns_imports_neither_pandas_nor_pyarrow(tmp_path: Path) -> None:
    folder = tmp_path / "predictions"
    _fill(folder).close()
    code = (
        "import sys, json; from pathlib import Path\n"
        "from opsloop.serving.predlog import PredictionReader\n"
        f"columns = PredictionReader(Path({str(folder)!r})).request_columns('d')\n"
        "print(json.dumps([len(columns['ts_ms']),"
        " sorted(m for m in ('pandas', 'pyarrow') if m in sys.modules)]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == [7, []]
