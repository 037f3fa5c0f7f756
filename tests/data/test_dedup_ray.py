"""Dedup on Ray: a table split into partitions, sketched per partition, bands shuffled by key,
pairs verified, clusters merged, on one local Ray instance for the module; the clusters, the
kept rows, the report and the new version must be the ones one machine makes, through the
engine and through ``opsloop data dedup --executor ray``; an address nobody answers is one
line, in seconds. Overlap on Ray (train and eval rows joined by exact and band keys): the
report, the verdict and the gate's exit code must be the local run's."""

from __future__ import annotations

import functools
import json
import os
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from opsloop.data.duplicates.engine import NearParams
from opsloop.data.duplicates.engine import contamination
from opsloop.data.duplicates.engine import deduplicate
from opsloop.data.duplicates.on_ray import clusters_on_ray
from opsloop.data.duplicates.on_ray import deduplicate_on_ray
from opsloop.data.duplicates.on_ray import overlap_on_ray
from tests.conftest import LiveServer
from tests.data.corpora import variant_maker
from tests.finetune.support import cli_checked

OPSLOOP = str(Path(sys.executable).with_name("opsloop"))


@pytest.fixture
def ray(local_ray: Any) -> Any:
    """The test process's local Ray instance."""
    return local_ray


def _corpus() -> list[str | None]:
    """Sources with near copies (a few words replaced) and exact copies (other case), some
    copies far from their source so they land in another partition; unrelated rows; empties."""
    rng = random.Random(4)
    words = [f"w{i}" for i in range(5000)]
    texts: list[str | None] = []
    for _ in range(15):
        source = [rng.choice(words) for _ in range(60)]
        near = list(source)
        near[rng.randrange(60)] = "edited"
        texts += [" ".join(source), " ".join(near), " ".join(source).title()]
    texts += [" ".join(rng.choice(words) for _ in range(60)) for _ in range(30)]
    texts += ["", None]
    rng.shuffle(texts)
    return texts


def _groups(roots: np.ndarray) -> set[frozenset[int]]:
    members: dict[int, set[int]] = {}
    for row, root in enumerate(roots.tolist()):
        members.setdefault(root, set()).add(row)
    return {frozenset(m) for m in members.values() if len(m) > 1}


def test_clusters_kept_rows_and_report_on_ray_are_the_local_ones(ray: Any) -> None:
    texts = _corpus()
    near = NearParams(threshold=0.6)
    _, report = deduplicate(texts, near=near)
    local = {frozenset([c["kept"], *(d["row"] for d in c["dropped"])]) for c in report["clusters"]}
    assert len(local) == 15
    parts = [texts[i : i + 23] for i in range(0, len(texts), 23)]
    assert _groups(clusters_on_ray(ray, parts, near, shards=3).roots) == local
    for options in ({"keep": "longest"}, {"exact": False}):
        keep, report = deduplicate(texts, near=near, **options)  # type: ignore[arg-type]
        keep_ray, report_ray = deduplicate_on_ray(
            ray,
            texts,
            partitions=4,
            near=near,
            **options,  # type: ignore[arg-type]
        )
        assert np.array_equal(keep, keep_ray)
        assert report_ray.pop("partitions") == 4
        assert report_ray == report and report["candidates_checked"] > 0


def test_cli_on_ray_writes_the_local_version_and_report(
    ray: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = functools.partial(cli_checked, capsys)

    path = tmp_path / "corpus.jsonl"
    texts = _corpus()
    pd.DataFrame({"id": range(len(texts)), "text": texts}).to_json(
        path, orient="records", lines=True
    )
    run("data", "add", str(path), "-n", "corpus")
    args = ("data", "dedup", "corpus@1", "--threshold", "0.6", "--json")
    local = json.loads(run(*args))
    remote = json.loads(run(*args, "--executor", "ray", "--partitions", "3", "-n", "onray"))
    assert remote["version"]["version_id"] == local["version"]["version_id"]  # same bytes
    assert remote["version"]["table"]["rows"] == local["version"]["table"]["rows"] == 47
    assert (local["report"].pop("executor"), remote["report"].pop("executor")) == ("local", "ray")
    assert remote["report"].pop("partitions") == 3
    assert remote["report"] == local["report"]
    text = run("data", "dedup", "corpus@1", "--executor", "ray", "-n", "again")
    assert "clusters on Ray (2 partitions)" in text  # one per CPU of the instance
    stored = json.loads(run("data", "dedup-report", "onray@1", "--json"))
    assert stored["executor"] == "ray" and stored["clusters"] == local["report"]["clusters"]
    lineage = json.dumps(json.loads(run("data", "show", "onray@1", "--json"))["lineage"])
    assert "corpus@1" in lineage and "deduplicated" in lineage, lineage
    for bad in (
        ("--executor", "spark"),
        ("--executor", "ray", "--partitions", "0"),
        ("--executor", "ray", "--semantic"),
    ):
        out = run("data", "dedup", "corpus@1", *bad, code=2).strip()
        assert len(out.splitlines()) == 1 and "Traceback" not in out, out
    env = {**os.environ, "RAY_ADDRESS": "127.0.0.1:1"}  # nobody listens on port 1
    done = subprocess.run([OPSLOOP, "data", "dedup", "corpus@1", "--executor", "ray"],
                          capture_output=True, text=True, env=env, timeout=60)  # fmt: skip
    out = (done.stdout + done.stderr).strip()
    assert done.returncode == 10 and len(out.splitlines()) == 1, out
    assert "Ray at 127.0.0.1:1 (RAY_ADDRESS) cannot be reached" in out


def _overlap_corpus() -> tuple[list[str | None], list[str | None]]:
    """Train and eval tables where each eval row's best train match is a tie to break as one
    machine breaks it: half the sources are held twice by train, word for word (plus a
    variant), and come to eval as an exact copy (other case) and a near copy; the other half
    are held by train as two variants, each one word replaced far from the other, and come
    to eval as a third such variant (equally similar to both, found in different bands).
    Eval rows found in no train row, and empties on both sides."""
    rng = random.Random(7)
    words = [f"w{i}" for i in range(5000)]
    variant = variant_maker()

    train: list[str | None] = []
    evaluation: list[str | None] = []
    for group in range(12):
        source = [rng.choice(words) for _ in range(60)]
        if group % 2:
            train += [variant(source, 15), variant(source, 45)]
            evaluation.append(variant(source, 30))
        else:
            train += [" ".join(source), " ".join(source), variant(source, 5, 50)]
            evaluation += [" ".join(source).upper(), variant(source, rng.randrange(60))]
    train += [" ".join(rng.choice(words) for _ in range(60)) for _ in range(20)] + [""]
    evaluation += [" ".join(rng.choice(words) for _ in range(60)) for _ in range(16)]
    evaluation += ["  ", None]
    rng.shuffle(train)
    rng.shuffle(evaluation)
    return train, evaluation


def test_overlap_on_ray_is_the_local_report(ray: Any) -> None:
    train, evaluation = _overlap_corpus()
    near = NearParams(threshold=0.6)
    for exact, partitions in ((True, 3), (True, 7), (False, 4)):
        local = contamination(train, evaluation, exact=exact, near=near)
        on_ray = overlap_on_ray(ray, train, evaluation, partitions=partitions, exact=exact,
                                near=near)  # fmt: skip
        assert on_ray.pop("partitions") == partitions
        assert on_ray == local
        by = local["by_method"]
        assert (by["exact"], by["near"]) == ((6, 12) if exact else (0, 18)), by
        assert local["empty_eval_rows"] == 2


def test_cli_overlap_on_ray_is_the_local_verdict(
    ray: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = functools.partial(cli_checked, capsys)
    for name, texts in zip(("train", "heldout"), _overlap_corpus(), strict=True):
        path = tmp_path / f"{name}.jsonl"
        pd.DataFrame({"text": texts}).to_json(path, orient="records", lines=True)
        run("data", "add", str(path), "-n", name)
    args = ("data", "overlap", "train@1", "heldout@1", "--threshold", "0.6", "--max-rate", "0.1")
    local = json.loads(run(*args, "--json", code=1))
    remote = json.loads(run(*args, "--executor", "ray", "--partitions", "3", "--json", code=1))
    assert (local.pop("executor"), remote.pop("executor")) == ("local", "ray")
    assert remote.pop("partitions") == 3
    assert remote == local and local["contaminated"] == 18 and not local["passed"]
    text = run(*args, "--executor", "ray", code=1)
    assert text.startswith(f"FAILED: {local['checks'][0]['message']} (on Ray, 2 partitions)")
    for bad in (("--executor", "spark"), ("--executor", "ray", "--partitions", "0")):
        out = run(*args, *bad, code=2).strip()
        assert len(out.splitlines()) == 1 and "Traceback" not in out, out
    # Ray not installed: a module named ray that fails to import, first on the path
    (tmp_path / "no_ray").mkdir()
    (tmp_path / "no_ray" / "ray.py").write_text("raise ImportError('no ray here')\n")
    command = [OPSLOOP, *args, "--executor", "ray"]
    for env, code, says in (
        ({"PYTHONPATH": str(tmp_path / "no_ray")}, 2, "needs Ray: pip install 'opsloop[ray]'"),
        ({"RAY_ADDRESS": "127.0.0.1:1"}, 10, "Ray at 127.0.0.1:1 (RAY_ADDRESS) cannot be reached"),
    ):
        done = subprocess.run(command, capture_output=True, text=True,
                              env={**os.environ, **env}, timeout=60)  # fmt: skip
        out = (done.stdout + done.stderr).strip()
        assert done.returncode == code and len(out.splitlines()) == 1, out
        assert says in out and out.startswith("error"), out


def test_rest_overlap_on_ray_is_the_local_report(ray: Any, sqlite_url: str, tmp_path: Path) -> None:
    import httpx

    from opsloop import Client

    with LiveServer(sqlite_url, str(tmp_path / "server-blobs")) as server:
        client = Client(server_url=server.url)
        for name, texts in zip(("train", "heldout"), _overlap_corpus(), strict=True):
            path = tmp_path / f"{name}.jsonl"
            pd.DataFrame({"text": texts}).to_json(path, orient="records", lines=True)
            client.data.add(path, name, push=True)
        asked = {"train": "train@1", "eval": "heldout@1", "threshold": 0.6, "max_rate": 0.6}
        api = httpx.Client(base_url=server.url + "/api")
        local = api.post("/dataset-overlaps", json=asked).json()
        remote = client.data.overlap("train@1", "heldout@1", threshold=0.6, max_rate=0.6,
                                     executor="ray", partitions=3)  # fmt: skip
        assert (local.pop("executor"), remote.pop("executor"), remote.pop("partitions")) == (
            "local",
            "ray",
            3,
        )
        assert remote == local and local["passed"] and local["contaminated"] == 18
        for bad in ({"executor": "spark"}, {"executor": "ray", "partitions": 0}):
            answer = api.post("/dataset-overlaps", json={**asked, **bad})
            assert answer.status_code == 400 and "Traceback" not in answer.text, answer.text
        client.close()
