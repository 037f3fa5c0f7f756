"""Data versions through the SDK, the same on the local store and through a server,
on SQLite and PostgreSQL: add, dedupe, get, diff, aliases, tags, validation, lineage."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pandas as pd
import pytest

from opsloop import Client
from opsloop import Conflict
from opsloop import InvalidInput
from opsloop import NotFound


def test_add_folder_is_content_addressed_and_deduplicated(client: Client, folder: Path) -> None:
    first = client.data.add(folder, "pets", message="first crawl", tags={"source": "web"})
    v = first.version
    assert first.created and v.ref == "pets@1" and v.kind == "folder"
    assert v.file_count == 11 and v.total_bytes == sum(
        p.stat().st_size for p in folder.rglob("*") if p.is_file()
    )
    assert v.tags == {"source": "web"} and v.message == "first crawl"
    again = client.data.add(folder, "pets")
    assert not again.created and again.version.number == 1 and again.hashed_files == 0
    (folder / "cats" / "5.txt").write_text("cat 5")
    second = client.data.add(folder, "pets", message="one more cat")
    assert second.created and second.version.number == 2
    assert second.version.version_id != v.version_id
    assert [x.number for x in client.data.versions("pets").items] == [2, 1]
    assert client.data.get("pets").ref == "pets@2"  # a bare name means latest
    assert client.data.get("pets@latest").ref == "pets@2"
    listed = client.data.list().items
    assert [(d.name, d.version_count, d.latest) for d in listed] == [("pets", 2, 2)]


def test_same_bytes_in_two_datasets_share_one_version_id(client: Client, folder: Path) -> None:
    a = client.data.add(folder, "a").version
    b = client.data.add(folder, "b").version
    assert a.version_id == b.version_id and b.number == 1


def test_table_version_reads_back_and_records_schema(client: Client, iris_csv: Path) -> None:
    version = client.data.add(iris_csv, "iris").version
    assert version.kind == "table" and version.table is not None
    assert version.table.rows == 150 and version.table.format == "csv"
    columns = {c.name: c for c in version.table.columns}
    assert columns["sepal length (cm)"].type == "DOUBLE"
    assert columns["sepal length (cm)"].stats["min"] == pytest.approx(4.3)
    handle = client.data.get("iris@1")
    frame = handle.to_pandas()
    pd.testing.assert_frame_equal(frame, pd.read_csv(iris_csv), check_dtype=False)
    assert handle.to_arrow().num_rows == 150
    assert handle.path().read_bytes() == iris_csv.read_bytes()


def test_diff_reports_files_schema_rows_and_stats(
    client: Client, folder: Path, iris_csv: Path
) -> None:
    client.data.add(folder, "pets")
    (folder / "README").write_text("pets, v2")
    (folder / "dogs" / "0.txt").unlink()
    (folder / "birds.txt").write_text("tweet")
    client.data.add(folder, "pets")
    d = client.data.diff("pets@1", "pets@2")
    assert (d.added, d.removed, d.modified, d.unchanged) == (1, 1, 1, 9)
    assert {(f.path, f.change) for f in d.files} == {
        ("birds.txt", "added"),
        ("dogs/0.txt", "removed"),
        ("README", "modified"),
    }
    client.data.add(iris_csv, "iris")
    frame = pd.read_csv(iris_csv).head(100).drop(columns=["petal width (cm)"])
    frame["petal length (cm)"] = frame["petal length (cm)"].astype(str) + "cm"
    frame.to_csv(iris_csv, index=False)
    client.data.add(iris_csv, "iris")
    table = client.data.diff("iris@1", "iris@2").table
    assert table is not None and (table.old_rows, table.new_rows) == (150, 100)
    changes = {c.name: c for c in table.columns}
    assert changes["petal width (cm)"].change == "removed"
    assert changes["petal length (cm)"].change == "type"
    assert changes["petal length (cm)"].new_type == "VARCHAR"
    assert changes["sepal length (cm)"].change == "stats"
    assert (
        "max" in changes["sepal length (cm)"].stats or "mean" in changes["sepal length (cm)"].stats
    )


def test_aliases_and_tags(client: Client, folder: Path) -> None:
    client.data.add(folder, "pets")
    (folder / "new.txt").write_text("x")
    client.data.add(folder, "pets")
    assert client.data.set_alias("pets@1", "prod").aliases == ["prod"]
    assert client.data.get("pets@prod").info.number == 1
    client.data.set_alias("pets@2", "prod")  # moving an alias is explicit and allowed
    assert client.data.get("pets@prod").info.number == 2
    assert client.data.dataset("pets").aliases == {"prod": 2}
    assert client.data.set_tag("pets@1", "reviewed", True).tags == {"reviewed": "True"}
    client.data.delete_alias("pets", "prod")
    with pytest.raises(NotFound, match="no alias 'prod'"):
        client.data.get("pets@prod")
    with pytest.raises(InvalidInput, match="latest"):
        client.data.set_alias("pets@1", "latest")
    with pytest.raises(NotFound):
        client.data.delete_alias("pets", "prod")


def test_validation_marks_the_version_and_names_failing_rows(
    client: Client, iris_csv: Path
) -> None:
    expectations = {
        "row_count": {"min": 100},
        "columns": {
            "sepal length (cm)": {"type": "float", "nullable": False, "max": 7.5},
            "target": {"allowed": [0, 1, 2]},
        },
        "sql": [{"name": "positive", "query": 'SELECT * FROM data WHERE "petal width (cm)" <= 0'}],
    }
    result = client.data.add(iris_csv, "iris", expectations=expectations)
    assert result.version.validation_status == "failed"
    report = result.validation
    assert report is not None and not report["passed"] and report["checks_failed"] == 1
    failing = next(c for c in report["checks"] if not c["passed"])
    assert failing["check"] == "columns.sepal length (cm).max"
    frame = pd.read_csv(iris_csv)
    expected_rows = frame.index[frame["sepal length (cm)"] > 7.5].tolist()
    assert failing["failing_rows"] == len(expected_rows)
    assert [s["row"] for s in failing["sample"]] == expected_rows[:20]
    assert client.data.validation("iris@1") == report
    expectations["columns"]["sepal length (cm)"]["max"] = 8.0
    version, again = client.data.validate("iris@1", expectations)
    assert again["passed"] and version.validation_status == "passed"


def test_lineage_records_inputs_and_outputs(client: Client, iris_csv: Path, tmp_path: Path) -> None:
    client.data.add(iris_csv, "iris")
    exp = client.set_experiment("lineage").experiment_id
    run = client.create_run(exp).info.run_id
    client.data.log_input(run, "iris@1")
    client.data.log_input(run, "iris@1")  # idempotent
    out = tmp_path / "scores.csv"
    pd.DataFrame({"score": [0.1, 0.9]}).to_csv(out, index=False)
    client.data.add(out, "scores")
    client.data.log_output(run, "scores")
    assert [(link.relation, link.run_id) for link in client.data.lineage("iris@1")] == [
        ("input", run)
    ]
    assert [(link.relation, link.run_id) for link in client.data.lineage("scores@1")] == [
        ("output", run)
    ]
    with pytest.raises(NotFound):
        client.data.log_input("0" * 32, "iris@1")
    with pytest.raises(NotFound):
        client.data.log_input(run, "iris@9")


def test_bad_input_is_refused_and_nothing_is_stored(
    client: Client, folder: Path, tmp_path: Path
) -> None:
    with pytest.raises(NotFound, match="no such file"):
        client.data.add(tmp_path / "missing", "x")
    with pytest.raises(InvalidInput, match="invalid dataset name"):
        client.data.add(folder, "bad name!")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InvalidInput, match="empty folder"):
        client.data.add(empty, "x")
    outside = tmp_path / "secret.txt"
    outside.write_text("do not version me")
    os.symlink(outside, folder / "link.txt")
    with pytest.raises(InvalidInput, match="points outside the folder"):
        client.data.add(folder, "pets")
    (folder / "link.txt").unlink()
    os.symlink(folder / "README", folder / "inside-link")
    assert client.data.add(folder, "pets").version.file_count == 12  # inside links are fine
    os.mkfifo(folder / "pipe")
    with pytest.raises(InvalidInput, match="not a regular file"):
        client.data.add(folder, "pets")
    with pytest.raises(InvalidInput, match=r"unknown check 'columns\.a\.maxx'"):
        client.data.add(folder, "x", expectations={"columns": {"a": {"maxx": 1}}})
    for ref in ("pets@7", "nope", "pets@someday"):
        with pytest.raises(NotFound):
            client.data.get(ref)
    for ref in ("pets@0", "pets@", "@1", "pets@a b"):
        with pytest.raises(InvalidInput):
            client.data.get(ref)
    with pytest.raises(InvalidInput, match="not a table"):
        client.data.get("pets@1").to_pandas()
    assert [d.name for d in client.data.list().items] == ["pets"]
    assert client.data.dataset("pets").version_count == 1


def test_checkout_writes_updates_and_protects_local_changes(
    client: Client, folder: Path, tmp_path: Path
) -> None:
    client.data.add(folder, "pets")
    shutil.rmtree(folder / "dogs")
    (folder / "cats" / "0.txt").write_text("a different cat")
    client.data.add(folder, "pets")
    work = tmp_path / "work"
    assert client.data.checkout("pets@1", work).files == 11
    assert (work / "dogs" / "3.txt").read_text() == "dog 3"
    second = client.data.checkout("pets@2", work)
    assert second.files == 1  # only the changed cat; the rest already matched
    assert not (work / "dogs").exists() or not any((work / "dogs").iterdir())
    assert (work / "cats" / "0.txt").read_text() == "a different cat"
    assert [s.clean for s in client.data.status(work)] == [True]
    (work / "cats" / "1.txt").write_text("edited by hand")
    with pytest.raises(Conflict, match="local change"):
        client.data.checkout("pets@1", work)
    client.data.checkout("pets@1", work, force=True)
    assert (work / "cats" / "1.txt").read_text() == "cat 1"
    stranger = tmp_path / "stranger"
    stranger.mkdir()
    (stranger / "mine.txt").write_text("keep me")
    with pytest.raises(Conflict, match="not empty"):
        client.data.checkout("pets@1", stranger)
    assert (stranger / "mine.txt").read_text() == "keep me"
    assert not list(work.rglob("*.opsloop-part"))
