"""Data drift over a table: opsloop's ``drift`` vs Evidently's data-drift preset, side by side.

    ./dev bench bench/drift.py
    .venv/bin/python bench/drift.py --rows 100000

A 20-column table (15 numeric of assorted shapes, 5 categorical of 2 to 200 categories) and a
copy in which 7 of the columns shift, at 100,000 and 1,000,000 rows, as Parquet files. Each tool
runs in its own fresh process (Evidently 0.7.23 in ``.venv-evidently``, as it needs pandas < 3):
it reads both files into pandas (not timed), then computes the per-column drift with its
default tests, timed, with its peak memory measured as the growth of resident memory during
the call (sampled every millisecond). Both are given the same column kinds. Prints seconds, peak MB,
the ratios, and every column whose verdict differs, with both statistics (each labelled a
p-value or a distance). For opsloop also what a monitor does: the reference profile's stored
size (JSON), the time to build and pack it, and a check against the stored profile.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EVIDENTLY_PYTHON = Path(os.environ.get("EVIDENTLY_PYTHON", ROOT / ".venv-evidently/bin/python"))
NUMERIC = [f"num_{i}" for i in range(15)]
CATEGORICAL = [f"cat_{i}" for i in range(5)]


def make_tables(rows: int, folder: Path) -> tuple[Path, Path]:
    import numpy as np
    import pandas as pd

    def table(seed: int, shift: bool) -> pd.DataFrame:
        rng = np.random.default_rng(seed)
        s = 1.0 if shift else 0.0
        data = {
            "num_0": rng.normal(0 + 0.3 * s, 1, rows),
            "num_1": rng.normal(10, 2 + 1.0 * s, rows),
            "num_2": rng.lognormal(0, 1, rows),
            "num_3": rng.lognormal(0.2 * s, 1, rows),
            "num_4": rng.uniform(0, 1, rows),
            "num_5": rng.uniform(0, 1 + 0.3 * s, rows),
            "num_6": rng.exponential(3, rows),
            "num_7": rng.poisson(20, rows).astype(float),
            "num_8": rng.poisson(20 + 4 * s, rows).astype(float),
            "num_9": rng.integers(0, 4, rows).astype(float),  # 4 values: tested as categories
            "num_10": rng.standard_t(3, rows),
            "num_11": rng.normal(0, 1, rows) + 0.02 * s,  # a shift too small to matter
            "num_12": rng.gamma(2, 2, rows),
            "num_13": rng.beta(2, 5 - 2 * s, rows),
            "num_14": rng.normal(100, 15, rows),
        }
        for name in ("num_2", "num_14"):
            data[name][rng.random(rows) < 0.01] = np.nan  # a few missing values
        p_binary = [0.5, 0.5] if not shift else [0.3, 0.7]
        data["cat_0"] = rng.choice(["yes", "no"], rows, p=p_binary)
        data["cat_1"] = rng.choice(list("abcde"), rows)
        weights = np.arange(1, 21, dtype=float)
        weights = weights[::-1] if shift else weights
        data["cat_2"] = rng.choice([f"c{i}" for i in range(20)], rows, p=weights / weights.sum())
        data["cat_3"] = rng.choice([f"city{i}" for i in range(200)], rows)
        data["cat_4"] = rng.choice(["red", "green", "blue"], rows, p=[0.5, 0.3, 0.2])
        return pd.DataFrame(data)

    ref, cur = folder / f"reference-{rows}.parquet", folder / f"current-{rows}.parquet"
    if not ref.exists():
        table(1, False).to_parquet(ref)
        table(2, True).to_parquet(cur)
    return ref, cur


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class PeakMemory:
    """The growth of resident memory during a block, sampled every millisecond on a thread
    (the process's own high-water mark would include the earlier reading of the files)."""

    def __enter__(self) -> PeakMemory:
        self.before = self.peak = _rss_mb()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.001):
            self.peak = max(self.peak, _rss_mb())

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss_mb())

    @property
    def growth_mb(self) -> float:
        return self.peak - self.before


def side_ours(ref_path: str, cur_path: str) -> dict:
    import pandas as pd
    import scipy.spatial.distance
    import scipy.stats  # noqa: F401

    from opsloop.monitoring.drift import drift

    ref, cur = pd.read_parquet(ref_path), pd.read_parquet(cur_path)
    types = {**dict.fromkeys(NUMERIC, "numeric"), **dict.fromkeys(CATEGORICAL, "categorical")}
    with PeakMemory() as memory:
        start = time.perf_counter()
        report = drift(ref, cur, column_types=types)
        seconds = time.perf_counter() - start
    verdicts = {
        c.column: {"test": c.stattest, "statistic": c.statistic, "type": c.score_type,
                   "drift": c.drift_detected}
        for c in report.columns
    }  # fmt: skip
    from opsloop.monitoring.profiles import TableProfile
    from opsloop.monitoring.profiles import profile_frame

    start = time.perf_counter()
    stored = json.dumps(profile_frame(ref, types).to_dict())  # type: ignore[arg-type]
    pack_seconds = time.perf_counter() - start
    profile = TableProfile.from_dict(json.loads(stored))
    start = time.perf_counter()
    drift(profile, cur)
    stored_seconds = time.perf_counter() - start
    return {
        "seconds": seconds, "peak_mb": memory.growth_mb, "verdicts": verdicts,
        "profile_mb": len(stored) / 2**20, "pack_seconds": pack_seconds,
        "stored_seconds": stored_seconds,
    }  # fmt: skip


def side_evidently(ref_path: str, cur_path: str) -> dict:
    import pandas as pd
    from evidently import DataDefinition
    from evidently import Dataset
    from evidently import Report
    from evidently.presets import DataDriftPreset

    ref, cur = pd.read_parquet(ref_path), pd.read_parquet(cur_path)
    definition = DataDefinition(numerical_columns=NUMERIC, categorical_columns=CATEGORICAL)
    with PeakMemory() as memory:
        start = time.perf_counter()
        snapshot = Report([DataDriftPreset()]).run(
            current_data=Dataset.from_pandas(cur, data_definition=definition),
            reference_data=Dataset.from_pandas(ref, data_definition=definition),
        )
        result = snapshot.dict()
        seconds = time.perf_counter() - start
    verdicts = {}
    for metric in result["metrics"]:
        config = metric["config"]
        if config.get("type", "").endswith("ValueDrift"):
            value, method = float(metric["value"]), config["method"]
            p_value = "p_value" in method or "test" in method.lower()
            drifted = value < config["threshold"] if p_value else value >= config["threshold"]
            verdicts[config["column"]] = {"test": method, "statistic": value,
                                          "type": "p_value" if p_value else "distance",
                                          "drift": drifted}  # fmt: skip
    return {"seconds": seconds, "peak_mb": memory.growth_mb, "verdicts": verdicts}


def run_side(python: Path, side: str, ref: Path, cur: Path) -> dict:
    out = subprocess.run(
        [str(python), __file__, "--side", side, str(ref), str(cur)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="*", default=[100_000, 1_000_000])
    parser.add_argument("--side", choices=["ours", "evidently"])
    parser.add_argument("paths", nargs="*")
    args = parser.parse_args()
    if args.side:
        fn = side_ours if args.side == "ours" else side_evidently
        print(json.dumps(fn(*args.paths)))
        return
    if not EVIDENTLY_PYTHON.exists():
        sys.exit(
            f"Evidently is not installed at {EVIDENTLY_PYTHON}: run ./dev bench bench/drift.py"
        )
    folder = Path(tempfile.gettempdir()) / "opsloop-bench-drift"
    folder.mkdir(exist_ok=True)
    print(f"{'rows':>10} {'tool':>10} {'seconds':>9} {'peak MB':>9}")
    for rows in args.rows:
        ref, cur = make_tables(rows, folder)
        ours = run_side(Path(sys.executable), "ours", ref, cur)
        theirs = run_side(EVIDENTLY_PYTHON, "evidently", ref, cur)
        for name, res in (("opsloop", ours), ("evidently", theirs)):
            print(f"{rows:>10} {name:>10} {res['seconds']:>9.3f} {res['peak_mb']:>9.0f}")
        speed = theirs["seconds"] / ours["seconds"]
        memory = ours["peak_mb"] / max(theirs["peak_mb"], 1)
        print(f"{rows:>10} {'ratio':>10} {speed:>8.1f}x {memory:>8.2f}x  (speed-up; memory share)")
        print(
            f"{'':>10} stored profile {ours['profile_mb']:.2f} MB, built and packed in "
            f"{ours['pack_seconds']:.2f} s; a check against it {ours['stored_seconds']:.3f} s"
        )
        drifted = sorted(c for c, v in ours["verdicts"].items() if v["drift"])
        print(f"{'':>10} drifted (opsloop): {', '.join(drifted)}")
        disagree = [
            c
            for c in ours["verdicts"]
            if ours["verdicts"][c]["drift"] != theirs["verdicts"][c]["drift"]
        ]
        for c in disagree:
            mine, other = ours["verdicts"][c], theirs["verdicts"][c]
            print(f"{'':>10} DISAGREE {c}: opsloop {mine} evidently {other}")
        if not disagree:
            print(f"{'':>10} same verdict on all {len(ours['verdicts'])} columns")
        for c in ours["verdicts"]:
            mine, other = ours["verdicts"][c], theirs["verdicts"][c]
            label = "p-value" if mine["type"] == "p_value" else "distance"
            print(f"{'':>10}   {c:>7} {mine['test']:>13} {label:>8} "
                  f"{mine['statistic']:.5g} vs {other['statistic']:.5g}")  # fmt: skip


if __name__ == "__main__":
    main()
