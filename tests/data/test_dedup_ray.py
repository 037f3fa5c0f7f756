"""Dedup on Ray: a table split into partitions, sketched per partition, bands shuffled by key,
pairs verified, clusters merged, on one local Ray instance for the module; the clusters, the
kept rows, the report and the new version must be the ones one machine makes, through the
engine and through ``opsloop data dedup --executor ray``; an address nobody answers is one
line, in seconds."""

from __future__ import annotations

import functools
import json
import os
import random
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from opsloop.data.duplicates.engine import NearParams
from opsloop.data.duplicates.engine import deduplicate
from opsloop.data.duplicates.on_ray import clusters_on_ray
from opsloop.data.duplicates.on_ray import deduplicate_on_ray
from tests.finetune.support import cli_checked

OPSLOOP = str(Path(sys.executable).with_name("opsloop"))


@pytest.fixture(scope="module")
def ray() -> Iterator[Any]:
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


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
