"""``opsloop data dedup`` / ``overlap`` on real dataset versions (JSON lines, Parquet, CSV),
the same through the local store and a server: the new version, its lineage edge and report,
the contamination gate, every bad input (SDK error, REST 4xx, CLI one line), and the page."""

from __future__ import annotations

import functools
import json
import os
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

from opsloop import Client
from opsloop import InvalidInput
from opsloop import NotFound
from tests.conftest import LiveServer
from tests.finetune.support import cli_checked

OPSLOOP = str(Path(sys.executable).with_name("opsloop"))
WORDS = [f"w{i}" for i in range(5000)]


def _corpus() -> pd.DataFrame:
    """40 unrelated 80-word texts, then an exact copy of row 0 (other case and punctuation),
    a copy of row 1 with one word changed (5-gram Jaccard 71/81), and a whitespace-only row."""
    rng = random.Random(11)
    texts = [" ".join(rng.choice(WORDS) for _ in range(80)) for _ in range(40)]
    words = texts[1].split()
    words[40] = "changed"
    texts += [texts[0].upper() + "!", " ".join(words), "   "]
    return pd.DataFrame(
        {"id": range(len(texts)), "text": texts, "quality": [0.5] * 40 + [0.9, 0.1, 0.0]}
    )


def _add(client: Client, frame: pd.DataFrame, tmp_path: Path, name: str, fmt: str) -> str:
    path = tmp_path / f"{name}.{fmt}"
    if fmt == "jsonl":
        frame.to_json(path, orient="records", lines=True)
    elif fmt == "parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False)
    return client.data.add(path, name, push=client.settings.is_remote).version.ref


@pytest.mark.parametrize("fmt", ["jsonl", "parquet", "csv"])
def test_dedup_writes_the_next_version_with_lineage_and_report(
    client: Client, tmp_path: Path, fmt: str
) -> None:
    ref = _add(client, _corpus(), tmp_path, "corpus", fmt)
    result = client.data.dedup(ref, "text", threshold=0.8, verify="exact")
    assert result.created and result.version is not None
    new = result.version
    assert new.ref == "corpus@2" and new.table is not None and new.table.format == fmt
    report = result.report
    assert report["removed"] == {"exact": 1, "near": 1, "semantic": 0}
    assert report["empty_rows"] == 1
    assert (report["rows"], report["rows_kept"]) == (43, 41)
    kept = {c["kept"]: [(d["row"], d["method"]) for d in c["dropped"]] for c in report["clusters"]}
    assert kept == {0: [(40, "exact")], 1: [(41, "near")]}
    near = report["clusters"][1]["dropped"][0]  # 71 of 81 shingles shared: the true Jaccard
    assert near["similarity"] == pytest.approx(71 / 81, abs=1e-4)
    frame = client.data.get(new.ref).to_pandas()
    assert frame["id"].tolist() == [*range(40), 42] and list(frame.columns) == [
        "id", "text", "quality"
    ]  # fmt: skip
    links = client.data.lineage(new.ref)
    assert [(link.direction, link.relation, link.ref) for link in links] == [
        ("upstream", "deduplicated", "corpus@1")
    ]
    stored = client.data.dedup_report(new.ref)
    assert stored["output"] == new.ref and stored["clusters"] == report["clusters"]
    with pytest.raises(NotFound, match="not made by opsloop data dedup"):
        client.data.dedup_report("corpus@1")
    again = client.data.dedup(new.ref, "text")
    assert again.version is None and sum(again.report["removed"].values()) == 0


def test_keep_best_scored_and_another_dataset(client: Client, tmp_path: Path) -> None:
    ref = _add(client, _corpus(), tmp_path, "corpus", "parquet")
    result = client.data.dedup(
        ref, near=False, keep="best-scored", score_column="quality", name="corpus-clean"
    )
    assert result.version is not None and result.version.ref == "corpus-clean@1"
    assert [c["kept"] for c in result.report["clusters"]] == [40]  # the 0.9 copy beats 0.5
    assert 0 not in client.data.get("corpus-clean@1").to_pandas()["id"].tolist()


def test_overlap_is_a_gate(client: Client, tmp_path: Path) -> None:
    corpus = _corpus()
    train = _add(client, corpus.iloc[:40], tmp_path, "train", "jsonl")
    evaluation = pd.DataFrame({"question": [corpus.text[40], corpus.text[41], "fresh text"]})
    eval_ref = _add(client, evaluation, tmp_path, "evalset", "csv")
    report = client.data.overlap(train, eval_ref, eval_column="question", max_rate=0.5)
    assert report["by_method"] == {"exact": 1, "near": 1} and not report["passed"]
    assert report["rate"] == pytest.approx(2 / 3) and report["checks"][0]["passed"] is False
    assert client.data.overlap(train, eval_ref, eval_column="question", max_rate=0.7)["passed"]


def test_bad_input_is_invalid_input(client: Client, tmp_path: Path, folder: Path) -> None:
    ref = _add(client, _corpus(), tmp_path, "corpus", "jsonl")
    with pytest.raises(InvalidInput, match="no column 'body'; its columns: id, text, quality"):
        client.data.dedup(ref, "body")
    with pytest.raises(InvalidInput, match=r"column 'quality' .* not text; text columns: text"):
        client.data.dedup(ref, "quality")
    with pytest.raises(InvalidInput, match=r"threshold must be in \(0, 1\]"):
        client.data.dedup(ref, threshold=0)
    with pytest.raises(InvalidInput, match="score column"):
        client.data.dedup(ref, keep="best-scored")
    client.data.add(folder, "pets", push=client.settings.is_remote)
    with pytest.raises(InvalidInput, match="pets@1 is not a table"):
        client.data.dedup("pets@1")
    latin = tmp_path / "latin.csv"
    latin.write_bytes("id,text\n1,ok\n2,caf\xe9\n".encode("latin-1"))
    try:
        client.data.add(latin, "latin", push=client.settings.is_remote)
    except InvalidInput:
        return  # refused at add already: nothing to deduplicate
    with pytest.raises(InvalidInput, match="not UTF-8 text: byte 0xe9 on line 3"):
        client.data.dedup("latin@1")


def test_cli_gate_json_and_one_line_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The commands in this process; one refusal through the installed command, where its exit
    code and one-line error are the point."""

    run = functools.partial(cli_checked, capsys)

    path = tmp_path / "corpus.jsonl"
    _corpus().to_json(path, orient="records", lines=True)
    run("data", "add", str(path), "-n", "corpus", code=0)
    out = json.loads(run("data", "dedup", "corpus@1", "--exact", "--json", code=0))
    assert out["version"]["number"] == 2 and out["report"]["removed"]["exact"] == 1
    assert "0 near" in run("data", "dedup-report", "corpus@2", code=0)
    for args in (
        ("data", "dedup", "corpus@1", "--column", "body"),
        ("data", "dedup", "corpus@1", "--threshold", "1.5"),
        ("data", "dedup", "corpus@1", "--keep", "random"),
    ):
        text = run(*args, code=2).strip()
        assert len(text.splitlines()) == 1 and "Traceback" not in text, text
    env = {**os.environ, "OPSLOOP_HOME": str(tmp_path / "home")}
    env.pop("OPSLOOP_SERVER_URL", None)
    done = subprocess.run([OPSLOOP, "data", "dedup", "nothing@1"], capture_output=True,
                          text=True, env=env, timeout=120)  # fmt: skip
    assert done.returncode == 3, done.stdout + done.stderr
    text = (done.stdout + done.stderr).strip()
    assert len(text.splitlines()) == 1 and "Traceback" not in text, text
    gate = run("data", "overlap", "corpus@2", "corpus@1", "--max-rate", "0.5", code=1)
    assert gate.startswith("FAILED: 42 of 42 non-empty rows of corpus@1 (100.00%)")
    run("data", "overlap", "corpus@2", "corpus@1", "--max-rate", "1", code=0)


def test_rest_answers_4xx_and_the_page_shows_clusters(database_url: str, tmp_path: Path) -> None:
    with LiveServer(database_url, str(tmp_path / "server-blobs")) as server:
        client = Client(server_url=server.url)
        ref = _add(client, _corpus(), tmp_path, "corpus", "jsonl")
        api = httpx.Client(base_url=server.url + "/api")
        bad: list[tuple[dict[str, Any], int]] = [
            ({"ref": ref, "column": "body"}, 400),
            ({"ref": ref, "threshold": 2}, 400),
            ({"ref": ref, "keep": "last"}, 400),
            ({"ref": "missing@1"}, 404),
            ({"ref": "bad ref!"}, 400),
        ]
        for body, code in bad:
            answer = api.post("/dataset-dedups", json=body)
            assert answer.status_code == code, (body, answer.text)
        assert api.get("/datasets/corpus/versions/1/dedup-report").status_code == 404
        made = api.post("/dataset-dedups", json={"ref": ref, "verify": "exact"})
        assert made.status_code == 201 and made.json()["version"]["number"] == 2
        over = api.post("/dataset-overlaps", json={"train": "corpus@2", "eval": ref})
        assert over.status_code == 200 and over.json()["contaminated"] == 42
        assert api.post("/dataset-overlaps", json={"train": ref, "eval": ref, "max_rate": 3})\
            .status_code == 400  # fmt: skip
        page = httpx.get(server.url + "/datasets/corpus/versions/2")
        assert page.status_code == 200 and 'id="dedup-link"' in page.text
        report = httpx.get(server.url + "/datasets/corpus/versions/2/dedup")
        assert report.status_code == 200 and "clusters-table" in report.text
        assert report.text.count("dropped</span>") == 2 and "0.876" in report.text
        client.close()
