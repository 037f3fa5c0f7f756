"""Drift statistics against SciPy's own functions, Evidently's default choices, the awkward
inputs (missing columns, empty windows, all-NaN and constant columns, unseen categories), and
`opsloop drift` as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import opsloop
from opsloop.errors import InvalidInput
from opsloop.monitoring.drift import drift
from opsloop.monitoring.profiles import TableProfile
from opsloop.monitoring.profiles import profile_frame

OPSLOOP = str(Path(sys.executable).with_name("opsloop"))


def frame(n: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "x": rng.normal(shift, 1, n),
            "skewed": rng.lognormal(shift, 1, n),
            "few": rng.integers(0, 4, n),
            "colour": rng.choice(["red", "green", "blue"], n, p=[0.5, 0.3, 0.2]),
            "flag": rng.choice([True, False], n),
        }
    )


def test_small_reference_uses_exact_p_value_tests_matching_scipy() -> None:
    ref, cur = frame(800, 1), frame(600, 2, shift=0.4)
    report = drift(ref, cur)
    x = report.column("x")
    assert x.stattest == "ks" and x.score_type == "p_value"
    assert x.statistic == pytest.approx(stats.ks_2samp(ref["x"], cur["x"]).pvalue)
    assert x.drift_detected is True
    colour = report.column("colour")
    assert colour.stattest == "chisquare"
    ref_counts = ref["colour"].value_counts()
    cur_counts = cur["colour"].value_counts()
    keys = list(ref_counts.index)
    expected = ref_counts[keys].to_numpy() * len(cur) / len(ref)
    scipy_p = stats.chisquare(cur_counts[keys].to_numpy(), expected).pvalue
    assert colour.statistic == pytest.approx(scipy_p)
    assert report.column("flag").stattest == "z"
    assert report.column("few").stattest == "chisquare"  # 4 distinct numbers: a category


def test_large_reference_uses_distances_and_matches_exact_wasserstein() -> None:
    ref, cur = frame(50_000, 1), frame(20_000, 2, shift=0.15)
    report = drift(ref, cur)
    for name in ("x", "skewed"):
        col = report.column(name)
        assert col.stattest == "wasserstein" and col.score_type == "distance"
        exact = stats.wasserstein_distance(ref[name], cur[name]) / np.std(ref[name])
        assert col.statistic == pytest.approx(exact, rel=1e-9)
    assert report.column("x").drift_detected is True
    assert report.column("colour").stattest == "jensenshannon"
    assert report.column("few").stattest == "jensenshannon"
    same = drift(ref, frame(20_000, 3))
    assert same.dataset_drift is False and same.drifted_columns == []


def test_large_reference_ks_agrees_with_scipy() -> None:
    ref, cur = frame(40_000, 1), frame(30_000, 2, shift=0.03)
    ours = drift(ref, cur, stattest="ks", columns=["x"]).column("x").statistic
    theirs = stats.ks_2samp(ref["x"], cur["x"]).pvalue
    assert ours == pytest.approx(theirs, rel=1e-9)


def test_dataset_verdict_follows_the_drifted_share() -> None:
    ref, cur = frame(3000, 1), frame(3000, 2)
    cur["x"] += 2
    cur["skewed"] *= 4
    cur["colour"] = "red"
    report = drift(ref, cur)
    assert sorted(report.drifted_columns) == ["colour", "skewed", "x"]
    assert report.share_drifted == pytest.approx(3 / 5)
    assert report.dataset_drift is True
    assert drift(ref, cur, drift_share=0.8).dataset_drift is False


def test_corrections_adjust_p_values() -> None:
    ref, cur = frame(500, 1), frame(500, 2, shift=0.12)
    plain = drift(ref, cur)
    holm = drift(ref, cur, correction="holm")
    bonferroni = drift(ref, cur, correction="bonferroni")
    for col in plain.tested:
        if col.score_type == "p_value":
            assert bonferroni.column(col.column).p_value_adjusted >= col.statistic
            assert (
                holm.column(col.column).p_value_adjusted
                <= bonferroni.column(col.column).p_value_adjusted
            )
    assert len(bonferroni.drifted_columns) <= len(plain.drifted_columns)
    with pytest.raises(InvalidInput, match="unknown correction"):
        drift(ref, cur, correction="sidak")


def test_columns_that_cannot_be_tested_get_no_verdict_and_a_reason() -> None:
    ref = frame(2000, 1)
    cur = frame(1500, 2).drop(columns=["colour"])
    cur["x"] = np.nan
    cur["few"] = "many"
    report = drift(ref, cur)
    assert report.column("colour").drift_detected is None
    assert report.column("colour").note == "missing in the current data"
    assert report.column("x").drift_detected is None
    assert report.column("x").note == "no values in the current data"
    assert report.column("x").current_missing == 1500
    assert "not in the current data" in (report.column("few").note or "")
    assert report.column("skewed").drift_detected is False  # the rest is still tested


def test_an_empty_window_gives_no_verdict_never_no_drift() -> None:
    ref = frame(2000, 1)
    report = drift(ref, ref.iloc[0:0])
    assert report.dataset_drift is None
    assert report.share_drifted is None
    assert all(c.drift_detected is None for c in report.columns)
    assert "no verdict" in repr(report)


def test_constant_reference_and_unseen_categories() -> None:
    ref = pd.DataFrame({"const": np.full(3000, 5.0), "city": ["a", "b"] * 1500})
    same = drift(ref, ref.copy())
    assert same.column("const").drift_detected is False
    moved = pd.DataFrame({"const": np.full(1000, 5.5), "city": ["a", "b", "c", "d"] * 250})
    report = drift(ref, moved)
    assert report.column("const").drift_detected is True  # normed by 0.001, not by 0
    city = report.column("city")
    assert city.drift_detected is True
    assert city.note == "2 categories unseen in the reference: c, d"
    small = drift(ref.iloc[:600], moved, stattest="chisquare", columns=["city"]).column("city")
    assert small.statistic == 0.0 and small.drift_detected is True


def test_bad_arguments_are_refused() -> None:
    ref = frame(100, 1)
    with pytest.raises(InvalidInput, match="unknown stattest 'anderson'"):
        drift(ref, ref, stattest="anderson")
    with pytest.raises(InvalidInput, match="does not apply to categorical column 'colour'"):
        drift(ref, ref, column_stattests={"colour": "ks"})
    with pytest.raises(InvalidInput, match="columns not in the reference: nope"):
        drift(ref, ref, columns=["nope"])
    with pytest.raises(InvalidInput, match="no such file"):
        drift("missing.parquet", ref)


def test_a_stored_profile_gives_the_same_report() -> None:
    ref, cur = frame(20_000, 1), frame(5000, 2, shift=0.2)
    profile = TableProfile.from_dict(json.loads(json.dumps(profile_frame(ref).to_dict())))
    direct, stored = drift(ref, cur), drift(profile, cur)
    assert [c.statistic for c in direct.columns] == pytest.approx(
        [c.statistic for c in stored.columns]
    )
    assert opsloop.drift(profile, cur).drifted_columns == direct.drifted_columns


def test_drift_command_table_json_and_html(tmp_path: Path) -> None:
    ref, cur = frame(3000, 1), frame(3000, 2, shift=1.0)
    ref.to_parquet(tmp_path / "ref.parquet")
    cur.to_csv(tmp_path / "cur.csv", index=False)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [OPSLOOP, "drift", *args], capture_output=True, text=True, timeout=120
        )

    done = run(str(tmp_path / "ref.parquet"), str(tmp_path / "cur.csv"), "--json",
               "--html", str(tmp_path / "report.html"))  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    x = next(c for c in report["columns"] if c["column"] == "x")
    assert {"column", "stattest", "statistic", "threshold", "drift_detected"} <= set(x)
    assert x["stattest"] == "wasserstein" and x["drift_detected"] is True
    html = (tmp_path / "report.html").read_text()
    assert html.count("<svg") == 5 and "wasserstein" in html
    table = run(str(tmp_path / "ref.parquet"), str(tmp_path / "cur.csv"), "--fail-on-drift",
                "--drift-share", "0.4")  # fmt: skip
    assert table.returncode == 1 and "DRIFT" in table.stdout
    bad = run(str(tmp_path / "ref.parquet"), str(tmp_path / "nope.csv"))
    assert bad.returncode == 2 and "no such file" in bad.stderr
    typo = run(str(tmp_path / "ref.parquet"), str(tmp_path / "cur.csv"), "--stattest", "kss")
    assert typo.returncode == 2 and "unknown stattest 'kss'" in typo.stderr


def test_drift_between_data_versions(tmp_path: Path, sqlite_url: str) -> Any:
    client = opsloop.Client(database_url=sqlite_url, blob_url=str(tmp_path / "blobs"))
    frame(2000, 1).to_parquet(tmp_path / "week1.parquet")
    frame(2000, 2, shift=1.0).to_parquet(tmp_path / "week2.parquet")
    client.data.add(str(tmp_path / "week1.parquet"), name="traffic")
    client.data.add(str(tmp_path / "week2.parquet"), name="traffic")
    report = drift(client.data.get("traffic@1"), client.data.get("traffic@2"))
    assert "x" in report.drifted_columns
    client.close()


def run_drift(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [OPSLOOP, "drift", *args], capture_output=True, text=True, timeout=120,
        env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip


def test_drift_command_labels_p_values_and_distances_and_reports_the_target(
    tmp_path: Path,
) -> None:
    small, large = frame(800, 1), frame(3000, 2, shift=1.0)
    small["id"] = [f"row-{i}" for i in range(len(small))]
    small.to_csv(tmp_path / "small.csv", index=False)
    large.assign(id=[f"row-{i}" for i in range(len(large))]).to_csv(
        tmp_path / "large.csv", index=False
    )
    done = run_drift(str(tmp_path / "small.csv"), str(tmp_path / "large.csv"),
                     "--target", "flag", "--exclude", "few", "-x", "colour")  # fmt: skip
    assert done.returncode == 0, done.stderr
    header = next(line for line in done.stdout.splitlines() if "column" in line)
    assert "p-value" in header and "distance" in header and "score" not in header
    cells = [[p.strip() for p in line.split("│")] for line in done.stdout.splitlines()]
    x_row = next(row for row in cells if row[1:2] == ["x"])
    assert x_row[3] == "ks" and x_row[4] and not x_row[5]  # a p-value, under "p-value"
    assert "skipped: id-like, 100.0% distinct" in done.stdout
    assert "few" not in done.stdout.split("dataset:")[0]
    assert "2 of 2 columns drifted" in done.stdout and "1 skipped" in done.stdout
    assert "target flag: z p-value" in done.stdout
    as_json = run_drift(str(tmp_path / "small.csv"), str(tmp_path / "large.csv"), "--json",
                        "--target", "flag")  # fmt: skip
    report = json.loads(as_json.stdout)
    assert report["target"]["column"] == "flag" and "p_value" in report["target"]
    assert report["skipped_columns"] == {"id": "id-like, 100.0% distinct"}
    x = next(c for c in report["columns"] if c["column"] == "x")
    assert x["score_type"] == "p_value" and x["p_value"] == x["statistic"]
    forced = run_drift(str(tmp_path / "small.csv"), str(tmp_path / "large.csv"), "--json",
                       "--column-stattest", "id=chisquare")  # fmt: skip
    ids = next(c for c in json.loads(forced.stdout)["columns"] if c["column"] == "id")
    assert ids["stattest"] == "chisquare" and ids["skipped"] is None


MALFORMED = {
    "ragged_long.csv": (b"x,few,colour\n1,2,red\n3,4,red,extra\n", "line 3 has 4 fields"),
    "ragged_short.csv": (b"x,few,colour\n1,2,red\n3,4\n", "line 3 has 2 fields"),
    "shifted.csv": (b"x,few,colour\n1,2,red,0\n3,4,blue,1\n", "line 2 has 4 fields"),
    "quoted.csv": (b'x,few,colour\n1,2,"red, dark"\n3\n', "line 3 has 1 fields"),
    "binary.csv": (bytes(range(256)) * 8, "binary data"),
    "latin1.csv": ("x,few,colour\n1,2,rouge\xe9\n".encode("latin-1"), "not a UTF-8 text CSV"),
    "empty.csv": (b"", "empty file"),
    "blank.csv": (b"\n\n", "empty file"),
    "semicolons.csv": (b"x;few;colour\n1;2;red\n", "separated by semicolons"),
    "other.csv": (b"a,b\n1,2\n", "has none of the reference's columns"),
    "broken.parquet": (b"PAR1 not really", "not a readable Parquet file"),
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_a_malformed_table_is_one_clear_line_and_exit_2(tmp_path: Path, name: str) -> None:
    content, message = MALFORMED[name]
    frame(200, 1).to_csv(tmp_path / "ref.csv", index=False)
    (tmp_path / name).write_bytes(content)
    for args in ((tmp_path / "ref.csv", tmp_path / name), (tmp_path / name, tmp_path / "ref.csv")):
        if name == "other.csv" and args[0] != tmp_path / "ref.csv":
            continue  # a reference without the current's columns is a choice, not a misread
        done = run_drift(*map(str, args))
        assert done.returncode == 2, (name, done.stdout, done.stderr)
        assert message in done.stderr and "Traceback" not in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr
