"""Semantic deduplication (SemDeDup) with the real all-MiniLM-L6-v2 model: paraphrases
dropped, unrelated sentences kept, the clustered search against brute-force cosine pairs,
the keep policy, bad input; and ``--semantic`` through the SDK, REST (the ``client``
fixture runs both) and the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from opsloop import Client
from opsloop import InvalidInput
from opsloop.data.duplicates.engine import deduplicate
from opsloop.data.duplicates.semantic import SemanticParams
from opsloop.data.duplicates.semantic import embed_rows
from opsloop.data.duplicates.semantic import semantic_duplicates
from opsloop.llm.evals.metrics import embed
from tests.finetune.support import cli

PARAPHRASES = [
    ("How do I reset my password?", "How can I reset my password?"),
    ("The cat sat on the mat.", "The cat was sitting on the mat."),
    ("Stock markets fell sharply on Monday.", "On Monday the stock markets fell sharply."),
    ("Preheat the oven to 200 degrees.", "Preheat your oven to 200 degrees."),
]
UNRELATED = [
    "Quantum computers use qubits instead of bits.",
    "The recipe needs two eggs and a cup of flour.",
    "Mount Everest is the highest mountain on Earth.",
    "Python lists are mutable sequences.",
    "The train to Berlin leaves at noon.",
    "Photosynthesis turns sunlight into chemical energy.",
]


def _texts() -> list[str]:
    return [a for a, _ in PARAPHRASES] + UNRELATED + [b for _, b in PARAPHRASES]


def test_paraphrases_are_dropped_and_unrelated_rows_kept() -> None:
    texts = _texts()
    keep, report = deduplicate(
        texts, exact=False, near=None, semantic=SemanticParams(eps=0.1), embedder=embed
    )
    originals, copies = len(PARAPHRASES), len(texts) - len(PARAPHRASES)
    assert keep.tolist() == [True] * copies + [False] * originals
    assert report["removed"] == {"exact": 0, "near": 0, "semantic": originals}
    pairs = {(c["kept"], d["row"]): d for c in report["clusters"] for d in c["dropped"]}
    assert set(pairs) == {(i, copies + i) for i in range(originals)}
    assert all(d["method"] == "semantic" and d["similarity"] > 0.9 for d in pairs.values())
    assert report["methods"] == ["semantic"] and report["semantic"]["cosine_threshold"] == 0.9


def test_keep_longest_keeps_the_longer_paraphrase() -> None:
    texts = ["The cat sat on the mat.", "The cat was sitting on the mat.", "Rain is wet."]
    keep, _ = deduplicate(
        texts, exact=False, near=None, semantic=SemanticParams(eps=0.1), embedder=embed,
        keep="longest",
    )  # fmt: skip
    assert keep.tolist() == [False, True, True]


def _brute_force(vectors: np.ndarray, threshold: float) -> set[int]:
    """SemDeDup without clusters, written plainly: visit rows in order, drop a row whose
    cosine to any kept row is above the threshold."""
    kept: list[int] = []
    dropped = set()
    for i in range(vectors.shape[0]):
        if kept and float(np.max(vectors[kept] @ vectors[i])) > threshold:
            dropped.add(i)
        else:
            kept.append(i)
    return dropped


def test_clustered_search_agrees_with_brute_force_cosine_pairs() -> None:
    """One cluster is brute force exactly; sqrt(n) k-means clusters find nearly every pair
    (on these 200 sentences all of them: the agreement is printed)."""
    rng = np.random.default_rng(3)
    subjects = ["the server", "my laptop", "the printer", "our database", "the build", "a user"]
    verbs = ["crashed", "restarted", "failed to start", "ran out of memory", "is slow"]
    times = ["today", "last night", "after the update", "on Monday", "every hour"]
    texts = [
        f"{rng.choice(subjects)} {rng.choice(verbs)} {rng.choice(times)}".capitalize() + "."
        for _ in range(200)
    ]
    vectors = embed_rows(embed, texts)
    threshold = 1 - 0.05
    truth = _brute_force(vectors, threshold)
    assert truth  # the sentences repeat: there is something to find
    order = np.zeros(len(texts))
    _, one, _ = semantic_duplicates(vectors, order, SemanticParams(eps=0.05, clusters=1))
    assert set(one.tolist()) == truth
    kept, dropped, cosine = semantic_duplicates(vectors, order, SemanticParams(eps=0.05))
    found = set(dropped.tolist())
    agreement = len(found & truth) / len(found | truth)
    print(f"SemDeDup with {round(np.sqrt(len(texts)))} clusters vs brute force: "
          f"{len(found)} vs {len(truth)} dropped, agreement (Jaccard) {agreement:.3f}")  # fmt: skip
    assert agreement >= 0.9
    assert np.all(cosine > threshold) and np.all(kept < dropped)


@pytest.mark.parametrize("eps", [0, 1, -0.1, 1.5, float("nan")])
def test_bad_eps_is_invalid_input(eps: float) -> None:
    with pytest.raises(InvalidInput, match=r"eps must be in \(0, 1\)"):
        deduplicate(["a", "b"], semantic=SemanticParams(eps=eps), embedder=embed)


def test_without_an_embedder_it_says_what_to_install() -> None:
    with pytest.raises(InvalidInput, match=r"pip install 'opsloop\[llm\]'"):
        deduplicate(["a", "b"], semantic=SemanticParams())


def _corpus(tmp_path: Path) -> Path:
    path = tmp_path / "questions.jsonl"
    pd.DataFrame({"id": range(len(_texts())), "text": _texts()}).to_json(
        path, orient="records", lines=True
    )
    return path


def test_sdk_and_rest_write_a_version_with_semantic_clusters(
    client: Client, tmp_path: Path
) -> None:
    ref = client.data.add(_corpus(tmp_path), "qs", push=client.settings.is_remote).version.ref
    result = client.data.dedup(ref, exact=False, near=False, semantic=True, eps=0.1)
    assert result.version is not None and result.version.ref == "qs@2"
    assert result.report["removed"]["semantic"] == len(PARAPHRASES)
    methods = {d["method"] for c in result.report["clusters"] for d in c["dropped"]}
    assert methods == {"semantic"}
    assert len(client.data.get("qs@2").to_pandas()) == len(_texts()) - len(PARAPHRASES)
    with pytest.raises(InvalidInput, match="eps must be"):
        client.data.dedup(ref, semantic=True, eps=2)


def test_cli_semantic_json_and_bad_eps(tmp_path: Path) -> None:
    """In this process (the embedding model is loaded once per process); the refusal through
    the installed command, where its exit code and one-line error are the point."""
    assert cli("data", "add", str(_corpus(tmp_path)), "-n", "qs")[0] == 0
    code, out = cli("data", "dedup", "qs@1", "--semantic", "--eps", "0.1", "--json")
    assert code == 0, out
    assert json.loads(out)["report"]["removed"]["semantic"] == len(PARAPHRASES)
    opsloop = str(Path(sys.executable).with_name("opsloop"))
    env = {**os.environ, "OPSLOOP_HOME": str(tmp_path / "home")}
    env.pop("OPSLOOP_SERVER_URL", None)
    bad = subprocess.run([opsloop, "data", "dedup", "qs@1", "--semantic", "--eps", "0"],
                         capture_output=True, text=True, env=env)  # fmt: skip
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1, bad.stderr
    assert "eps must be in (0, 1)" in bad.stderr
