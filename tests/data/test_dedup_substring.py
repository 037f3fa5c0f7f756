"""``opsloop data dedup --substring``: repeated spans cut by a suffix array, checked against a
brute-force search on random corpora, then end to end on real versions (JSON lines, Parquet,
CSV) through the SDK (local and a server), the CLI and REST: the new version, its lineage
and report, the page, and every bad input."""

from __future__ import annotations

import functools
import itertools
import json
import random
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from opsloop import Client
from opsloop import InvalidInput
from opsloop.data.duplicates.substring import SubstringParams
from opsloop.data.duplicates.substring import cut_repeats
from tests.conftest import LiveServer
from tests.finetune.support import cli_checked

pytest.importorskip("pydivsufsort")  # the llm extra's; the test extra installs it

WORDS = [f"w{i}" for i in range(5000)]
MIN = 60  # bytes: the planted paragraph is ~250, the random 40-word texts share no 60 bytes


def _brute_force(texts: list[str | None], k: int) -> tuple[list[str | None], int]:
    """Each row with every byte cut that lies in a k-byte window seen at an earlier start
    (rows in order), then every character not wholly cut kept; blank rows untouched, rows
    left blank None. Also the number of cut runs of characters (spans)."""
    seen: set[bytes] = set()
    out: list[str | None] = []
    spans = 0
    for text in texts:
        if text is None or not text.strip():
            out.append(text)
            continue
        data = text.encode()
        cut = [False] * len(data)
        for start in range(len(data) - k + 1):
            window = data[start : start + k]
            if window in seen:
                cut[start : start + k] = [True] * k
            seen.add(window)
        kept, at, before = [], 0, False
        for char in text:
            size = len(char.encode())
            gone = all(cut[at : at + size])
            at += size
            spans += gone and not before
            before = gone
            if not gone:
                kept.append(char)
        left = "".join(kept)
        out.append(left if left.strip() else None)
    return out, spans


@pytest.mark.parametrize("seed", range(4))
def test_the_suffix_array_cuts_what_brute_force_cuts(seed: int) -> None:
    """Random corpora over few symbols (repeats everywhere, windows across row ends, 2- to
    4-byte characters whose bytes match in part, blank and null rows): the same texts, the
    same rows dropped, the same spans."""
    rng = random.Random(seed)
    # é and © end with the same byte, € and ₂ start with the same two, 𝄞 and 𝄢 the same three
    symbols = ["a", "é", "©", "𝄞", "𝄢", " ", "€", "₂", "b"]
    for _ in range(60):
        alphabet = symbols[: rng.randint(2, len(symbols))]
        texts: list[str | None] = [
            "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
            for _ in range(rng.randint(1, 8))
        ]
        if rng.random() < 0.3:
            texts[rng.randrange(len(texts))] = None
        k = rng.randint(1, 12)
        expected, spans = _brute_force(texts, k)
        # in record batches cut at random rows, as a table scan hands them over
        whole = pa.record_batch({"id": range(len(texts)), "text": pa.array(texts, pa.string())})
        bounds = sorted({0, len(texts), *rng.sample(range(len(texts) + 1), 2)})
        batches = [whole.slice(lo, hi - lo) for lo, hi in itertools.pairwise(bounds)]
        cut = cut_repeats([b.column(1) for b in batches], np.ones(len(texts), bool),
                          SubstringParams(k, max_bytes=1 << 20))  # fmt: skip
        got = [
            text
            for batch, lo in zip(batches, bounds, strict=False)
            for text in cut.apply(batch, lo, "text").column(1).to_pylist()
        ]
        for row in cut.dropped.tolist():
            got[row] = None
        assert got == expected, (texts, k)
        assert cut.report["spans_removed"] == spans, (texts, k)
        assert cut.report["rows_dropped"] == cut.dropped.size


def test_rows_not_kept_are_not_looked_at_and_the_memory_bound_is_one_line() -> None:
    para = "the same paragraph, repeated word for word in three places"
    texts = [f"1 {para}", f"2 {para}", f"3 {para}"]
    cut = cut_repeats([pa.array(texts)], np.array([True, False, True]), SubstringParams(20))
    assert cut.rows.tolist() == [2] and cut.texts.to_pylist() == ["3"]
    assert cut.report["rows_looked_at"] == 2 and cut.report["spans"][0]["cuts"] == 1
    refused = r"needs over 2,\d+ bytes of memory for over 1\d\d bytes of text; the limit here is "
    with pytest.raises(InvalidInput, match=refused + "100 bytes of text$") as caught:
        cut_repeats([pa.array(texts)], np.ones(3, bool), SubstringParams(20, max_bytes=100))
    assert "\n" not in str(caught.value)


def _corpus() -> pd.DataFrame:
    """Eight unrelated 40-word texts; a paragraph planted at the end of row 2, the start of
    row 4 and alone in row 6 (left empty by the cut); a whitespace-only row; an exact copy of
    row 0 (the exact method's); a row with the paragraph's words in another order."""
    rng = random.Random(26)
    texts = [" ".join(rng.choice(WORDS) for _ in range(40)) + " ü€" for _ in range(8)]
    para = "Lorem 𝄞 ipsum: " + " ".join(rng.choice(WORDS) for _ in range(40))
    texts[2] += " " + para
    texts[4] = para + " " + texts[4]
    texts[6] = para
    shuffled = para.split()
    rng.shuffle(shuffled)
    texts += ["  ", texts[0], " ".join(shuffled)]
    return pd.DataFrame({"id": range(len(texts)), "text": texts})


def _add(client: Client, tmp_path: Path, fmt: str, name: str = "corpus") -> str:
    path = tmp_path / f"{name}.{fmt}"
    frame = _corpus()
    if fmt == "jsonl":
        frame.to_json(path, orient="records", lines=True, force_ascii=False)
    elif fmt == "parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False)
    return client.data.add(path, name, push=client.settings.is_remote).version.ref


def test_sdk_cuts_after_the_row_methods_into_a_version_with_lineage(
    client: Client, tmp_path: Path
) -> None:
    ref = _add(client, tmp_path, "jsonl")
    before = _corpus().text.tolist()
    result = client.data.dedup(ref, "text", exact=True, near=False, substring=True, min_length=MIN)
    assert result.created and result.version is not None and result.version.ref == "corpus@2"
    report = result.report
    assert report["methods"] == ["exact", "substring"]
    assert report["removed"] == {"exact": 1, "near": 0, "semantic": 0, "substring": 1}
    assert (report["rows"], report["rows_kept"], report["empty_rows"]) == (11, 9, 1)
    cut = report["substring"]
    assert (cut["rows_looked_at"], cut["blank_rows"]) == (9, 1)  # the exact copy went first
    assert (cut["spans_removed"], cut["rows_changed"], cut["rows_dropped"]) == (2, 2, 1)
    para = before[6]
    assert cut["bytes_removed"] == 2 * len(para.encode()) and "𝄞" in para
    assert cut["characters_removed"] == 2 * len(para)
    assert [(s["cuts"], s["row"], s["bytes"]) for s in cut["spans"]] == [(2, 4, len(para.encode()))]
    frame = client.data.get(result.version.ref).to_pandas()
    assert frame["id"].tolist() == [0, 1, 2, 3, 4, 5, 7, 8, 10]
    texts = dict(zip(frame["id"], frame["text"], strict=True))
    assert texts[2] == before[2] and texts[4] == before[4][len(para) :]
    assert texts[10] == before[10] and texts[8] == "  "  # other order; blank: untouched
    links = client.data.lineage(result.version.ref)
    assert [(link.relation, link.ref) for link in links] == [("deduplicated", "corpus@1")]
    assert client.data.dedup_report(result.version.ref)["substring"] == cut
    again = client.data.dedup(result.version.ref, exact=False, near=False, substring=True,
                              min_length=MIN)  # fmt: skip
    assert again.version is None and again.report["substring"]["spans_removed"] == 0


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_other_formats_keep_their_schema(tmp_path: Path, fmt: str) -> None:
    client = Client()
    ref = _add(client, tmp_path, fmt)
    result = client.data.dedup(ref, exact=False, near=False, substring=True, min_length=MIN)
    assert result.version is not None and result.version.table is not None
    assert result.version.table.format == fmt and result.report["methods"] == ["substring"]
    assert result.report["removed"]["substring"] == 2 and result.report["rows_kept"] == 9
    frame = client.data.get(result.version.ref).to_pandas()  # rows 6 and 9 left empty
    assert list(frame.columns) == ["id", "text"] and frame["id"].tolist() == [
        0,
        1,
        2,
        3,
        4,
        5,
        7,
        8,
        10,
    ]
    assert frame["text"][4] == _corpus().text[4][len(_corpus().text[6]) :]


def test_bad_input_is_invalid_input(tmp_path: Path) -> None:
    client = Client()
    ref = _add(client, tmp_path, "jsonl")
    for bad in (0, -5, 1 << 21):
        with pytest.raises(InvalidInput, match="min_length must be between 1 and"):
            client.data.dedup(ref, substring=True, min_length=bad)
    with pytest.raises(InvalidInput, match=r"column 'id' .* not text; text columns: text"):
        client.data.dedup(ref, "id", exact=False, near=False, substring=True)
    with pytest.raises(InvalidInput, match="choose a method: exact, near, semantic, substring"):
        client.data.dedup(ref, exact=False, near=False)
    latin = tmp_path / "latin.csv"
    latin.write_bytes("id,text\n1,ok\n2,caf\xe9\n".encode("latin-1"))
    try:
        client.data.add(latin, "latin")
    except InvalidInput:
        return  # refused at add already: nothing to cut
    with pytest.raises(InvalidInput, match="not UTF-8 text: byte 0xe9 on line 3"):
        client.data.dedup("latin@1", exact=False, near=False, substring=True)


def test_cli_json_report_and_one_line_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = functools.partial(cli_checked, capsys)
    path = tmp_path / "corpus.jsonl"
    _corpus().to_json(path, orient="records", lines=True, force_ascii=False)
    run("data", "add", str(path), "-n", "corpus", code=0)
    out = json.loads(run("data", "dedup", "corpus@1", "--substring", "--min-length", str(MIN),
                         "--json", code=0))  # fmt: skip
    assert out["version"]["number"] == 2 and out["report"]["methods"] == ["substring"]
    assert out["report"]["substring"]["rows_dropped"] == 2  # the exact copy is cut whole too
    assert out["report"]["substring"]["spans_removed"] == 3
    shown = run("data", "dedup-report", "corpus@2", code=0)
    assert "cut 3 repeated spans" in shown and "2 rows left empty dropped" in shown
    said = run("data", "dedup", "corpus@1", "--substring", "--exact", "-n", "other", code=0)
    assert "wrote other@1" in said and "repeated span" in said
    for args in (("--min-length", "0"), ("--column", "id")):
        text = run("data", "dedup", "corpus@1", "--substring", *args, code=2).strip()
        assert len(text.splitlines()) == 1 and "Traceback" not in text, text


def test_rest_field_4xx_and_the_page_lists_spans(sqlite_url: str, tmp_path: Path) -> None:
    with LiveServer(sqlite_url, str(tmp_path / "server-blobs")) as server:
        client = Client(server_url=server.url)
        ref = _add(client, tmp_path, "jsonl")
        api = httpx.Client(base_url=server.url + "/api")
        for body in ({"ref": ref, "substring": True, "min_length": 0},
                     {"ref": ref, "substring": True, "min_length": "long"},
                     {"ref": ref, "substring": True, "column": "id"}):  # fmt: skip
            answer = api.post("/dataset-dedups", json=body)
            assert answer.status_code in (400, 422) and "detail" in answer.text, answer.text
        made = api.post("/dataset-dedups", json={"ref": ref, "exact": False, "near": False,
                                                 "substring": True, "min_length": MIN})  # fmt: skip
        assert made.status_code == 201, made.text
        assert made.json()["report"]["substring"]["spans_removed"] == 3
        page = httpx.get(server.url + "/datasets/corpus/versions/2/dedup")
        assert page.status_code == 200 and 'id="spans-table"' in page.text
        assert "Lorem 𝄞 ipsum" in page.text and "left empty and dropped" in page.text
        api.close()
        client.close()
