"""``opsloop data`` as a user runs it (real processes, exit codes, --json), and the REST API's
answers to bad requests."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import LiveServer

OPSLOOP = [str(Path(sys.executable).with_name("opsloop"))]


def run(*args: str, code: int = 0) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([*OPSLOOP, *args], capture_output=True, text=True, timeout=120)
    assert done.returncode == code, done.stderr + done.stdout
    return done


def test_data_commands_end_to_end(tmp_path: Path, iris_csv: Path, folder: Path) -> None:
    added = json.loads(run("data", "add", str(folder), "--name", "pets", "--json").stdout)
    assert added["created"] and added["version"]["number"] == 1
    assert "unchanged" in run("data", "add", str(folder), "-n", "pets").stdout
    assert "up to date" in run("data", "status").stdout
    remote = json.loads(run("data", "status", "--remote", "--json").stdout)
    assert remote[0]["unpushed"] == []  # the embedded blob folder is the blob store
    (folder / "new.txt").write_text("new")
    changed = run("data", "status", code=1).stdout
    assert "1 added" in changed and "new.txt" in changed
    run("data", "add", str(folder), "-n", "pets", "-m", "more")
    assert "1 added, 0 removed, 0 modified" in run("data", "diff", "pets@1", "pets@2").stdout
    run("data", "alias", "pets@1", "golden")
    assert json.loads(run("data", "list", "--json").stdout)[0]["aliases"] == {"golden": 1}
    run("data", "checkout", "pets@golden", str(tmp_path / "co"))
    assert not (tmp_path / "co" / "new.txt").exists()
    assert (tmp_path / "co" / "README").read_text() == "pets"

    expect = tmp_path / "expect.yaml"
    expect.write_text("columns:\n  target: {allowed: [0, 1]}\nrow_count: {min: 10}\n")
    failed = run("data", "add", str(iris_csv), "-n", "iris", "--expect", str(expect), code=1)
    assert "validation FAILED" in failed.stdout and "columns.target.allowed" in failed.stdout
    shown = json.loads(run("data", "show", "iris@1", "--json").stdout)
    assert shown["version"]["validation_status"] == "failed"
    expect.write_text("columns:\n  target: {allowed: [0, 1, 2]}\n")
    assert "validation passed" in run("data", "validate", "iris", "--expect", str(expect)).stdout

    out = json.loads(run("data", "profile", "iris@1", "--out", str(tmp_path), "--json").stdout)
    html = Path(out["html"]).read_text()
    assert "<svg" in html and "sepal length (cm)" in html and "Correlations" in html
    summary = json.loads(Path(out["json"]).read_text())
    assert summary["rows"] == 150 and len(summary["columns"]) == 5
    petal = next(c for c in summary["columns"] if c["name"] == "petal length (cm)")
    assert sum(petal["histogram"]["counts"]) == 150
    matrix = summary["correlations"]["matrix"]
    names = summary["correlations"]["columns"]
    r = matrix[names.index("petal length (cm)")][names.index("petal width (cm)")]
    assert r == pytest.approx(0.9629, abs=1e-3)


def test_data_command_errors_exit_non_zero(tmp_path: Path, folder: Path) -> None:
    assert "no such file" in run("data", "add", str(tmp_path / "nope"), "-n", "x", code=3).stderr
    assert "invalid dataset name" in run("data", "add", str(folder), "-n", "a b", code=2).stderr
    assert "does not exist" in run("data", "show", "ghost@1", code=3).stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("columns:\n  x: {between: [1, 2]}\n")
    run("data", "add", str(folder), "-n", "pets")
    err = run("data", "validate", "pets@1", "--expect", str(bad), code=2).stderr
    assert "unknown check 'columns.x.between'" in err
    assert "never added" in run("data", "status", str(tmp_path), code=2).stderr
    looped = tmp_path / "looped"
    looped.mkdir()
    (looped / "a.txt").write_text("a")
    (looped / "self").symlink_to(looped / "self")  # a link to itself: ELOOP when followed
    err = run("data", "add", str(looped), "-n", "looped", code=2).stderr
    assert "cannot be followed" in err and "Traceback" not in err and len(err.splitlines()) == 1
    odd = tmp_path / "odd"
    odd.mkdir()
    (odd / "new\nline.txt").write_text("x")  # a name no manifest may hold
    err = run("data", "add", str(odd), "-n", "odd", code=2).stderr
    assert "control character" in err and "Traceback" not in err
    help_text = run("data", "--help").stdout
    for command in ("add", "status", "diff", "push", "pull", "checkout", "validate", "profile"):
        assert command in help_text


def test_rest_api_rejects_bad_requests(tmp_path: Path, sqlite_url: str) -> None:
    with LiveServer(sqlite_url, str(tmp_path / "blobs")) as server:
        api = httpx.Client(base_url=server.url + "/api")
        good = {"files": [["a.txt", "0" * 64, 3]], "kind": "folder"}
        created = api.post("/datasets/demo/versions", json=good)
        assert created.status_code == 201 and created.json()["version"]["number"] == 1
        again = api.post("/datasets/demo/versions", json=good)
        assert again.status_code == 200 and again.json()["created"] is False
        cases = [
            ({"files": [["a.txt", "xyz", 3]], "kind": "folder"}, "not a BLAKE3 digest"),
            ({"files": [["../etc/passwd", "0" * 64, 3]], "kind": "folder"}, "escapes"),
            # One path rule for every manifest (artifacts share it): no NUL, backslash, blank
            # part, over-long name or non-normal form; sizes are real byte counts.
            ({"files": [["a\x00b", "0" * 64, 3]], "kind": "folder"}, "NUL"),
            ({"files": [["dir\\a.txt", "0" * 64, 3]], "kind": "folder"}, "backslash"),
            ({"files": [["x" * 5000, "0" * 64, 3]], "kind": "folder"}, "the limit is 1024"),
            ({"files": [["  /a.txt", "0" * 64, 3]], "kind": "folder"}, "only of blanks"),
            ({"files": [["  ", "0" * 64, 3]], "kind": "folder"}, "only of blanks"),
            ({"files": [["./a.txt", "0" * 64, 3]], "kind": "folder"}, "normal form"),
            ({"files": [["C:/a.txt", "0" * 64, 3]], "kind": "folder"}, "absolute"),
            ({"files": [["a.txt", "0" * 64, 2**63]], "kind": "folder"}, "whole number of bytes"),
            ({"files": [["a.txt", "0" * 64, -1]], "kind": "folder"}, "whole number of bytes"),
            ({"files": [["a", "0" * 64, 1], ["a", "1" * 64, 1]], "kind": "folder"}, "twice"),
            ({"files": [], "kind": "folder"}, "at least 1"),
            ({"files": [["a", "0" * 64, 1]], "kind": "zip"}, "kind"),
        ]
        for body, message in cases:
            response = api.post("/datasets/demo/versions", json=body)
            assert response.status_code == 400, body
            assert message in response.json()["error"]["message"]
        assert api.post("/datasets/bad name/versions", json=good).status_code == 400
        assert api.get("/datasets/demo/versions/7").status_code == 404
        assert api.get("/datasets/ghost").status_code == 404
        assert (
            api.get("/dataset-diffs", params={"old": "demo@1", "new": "demo@0"}).status_code == 400
        )
        assert api.put("/datasets/demo/aliases/latest", json={"version": 1}).status_code == 400
        assert api.put("/datasets/demo/aliases/prod", json={"version": 9}).status_code == 404
        run_link = api.post(
            f"/runs/{'0' * 32}/datasets", json={"ref": "demo@1", "relation": "input"}
        )
        assert run_link.status_code == 404
        # nothing accepted before was touched by the refusals
        assert [v["number"] for v in api.get("/datasets/demo/versions").json()["items"]] == [1]


def test_a_manifest_that_lies_about_sizes_is_refused_at_checkout(
    tmp_path: Path, sqlite_url: str, iris_csv: Path
) -> None:
    from opsloop import Client
    from opsloop.errors import InvalidInput

    with LiveServer(sqlite_url, str(tmp_path / "blobs")) as server:
        client = Client(server_url=server.url)
        honest = client.data.add(iris_csv, name="iris", push=True).version
        (entry,) = client.data.manifest(honest.ref)[1].entries
        lie = {"files": [["iris.csv", entry.digest, entry.size + 1_000_000]], "kind": "file"}
        assert httpx.post(f"{server.url}/api/datasets/liar/versions", json=lie).status_code == 201
        with pytest.raises(InvalidInput, match="declares 1,00"):
            client.data.checkout("liar@1", tmp_path / "out.csv")
        assert not (tmp_path / "out.csv").exists()  # nothing written
        client.data.checkout(honest.ref, tmp_path / "honest.csv")  # the truth still checks out
        assert (tmp_path / "honest.csv").read_bytes() == iris_csv.read_bytes()
        client.close()
