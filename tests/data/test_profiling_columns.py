"""Profiling names its own helper columns so that no table column can shadow them."""

from __future__ import annotations

from pathlib import Path

from opsloop.data.profiling import profile_table


def test_a_column_named_like_a_helper_column_profiles(tmp_path: Path) -> None:
    csv = tmp_path / "t.csv"
    csv.write_text("a,b,bucket\n" + "".join(f"{i},{i * 2},{i % 3}\n" for i in range(50)))
    columns = {c["name"]: c for c in profile_table([str(csv)], "csv")["columns"]}
    assert sum(columns["b"]["histogram"]["counts"]) == 50  # b's own values, not a's buckets
    assert columns["b"]["histogram"]["edges"][-1] == 98.0
    assert sum(columns["bucket"]["histogram"]["counts"]) == 50
