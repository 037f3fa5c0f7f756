"""``models compress``: a real MLP trained here through ONNX int8 (SDK on both backends, the CLI,
raw REST), and a tiny GPT-2 built from a config (nothing downloaded) through torch dynamic int8
and magnitude pruning. Each new version is registered, linked to its original, loaded back and
judged by the gate both ways."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from opsloop.errors import InvalidInput
from opsloop.errors import NotFound
from tests.conftest import LiveServer

OPSLOOP = [str(Path(sys.executable).with_name("opsloop"))]


@pytest.fixture(scope="module")
def mlp(cancer: pd.DataFrame) -> Any:
    X, y = cancer.drop(columns=["target"]), cancer["target"]
    model = MLPClassifier((64, 32), max_iter=400, random_state=0)
    with warnings.catch_warnings():  # not converged to the last digit: good enough to compress
        warnings.simplefilter("ignore", ConvergenceWarning)
        return make_pipeline(StandardScaler(), model).fit(X, y)


def _register(client: Any, cancer_csv: Path, mlp: Any, cancer: pd.DataFrame) -> Any:
    client.data.add(cancer_csv, name="cancer", push=True)
    features = cancer.drop(columns=["target"])
    return client.models.register("clf", mlp, input_example=features.head())


def test_onnx_int8_is_registered_linked_measured_and_gated(
    client: Any, cancer_csv: Path, mlp: Any, cancer: pd.DataFrame
) -> None:
    original = _register(client, cancer_csv, mlp, cancer)
    client.models.set_alias(original.ref, "edge")
    strict = client.models.compress(
        "clf@1", "onnx-int8", data="cancer@1", target="target", min_size_ratio=1000, alias="edge"
    )
    assert strict.version.ref == "clf@2" and strict.original == "clf@1"
    assert strict.version.tags["compressed_from"] == "clf@1"
    assert strict.version.tags["compression.method"] == "onnx-int8"
    assert not strict.passed and strict.alias_event is not None and not strict.alias_event.moved
    size_rule, quality_rule = strict.verdict["rules"]
    assert not size_rule["passed"] and quality_rule["passed"]
    assert client.models.get("clf").aliases == {"edge": 1}
    quality = strict.quality
    assert quality is not None and quality.metric == "accuracy" and quality.data == "cancer@1"
    assert quality.before > 0.85 and abs(quality.drop) < 0.02 and quality.rows == len(cancer)
    assert strict.compressed_bytes < strict.original_bytes
    assert strict.size_ratio == pytest.approx(strict.original_bytes / strict.compressed_bytes, 1e-3)
    assert set(strict.latency_ms) == {"one_row", "batch"} and strict.batch_rows == 256
    assert all(v["original"] > 0 and v["compressed"] > 0 for v in strict.latency_ms.values())

    loose = client.models.compress(
        "clf@1", "onnx-int8", data="cancer@1", target="target", min_size_ratio=1.5,
        max_quality_drop=0.05, alias="edge",
    )  # fmt: skip
    assert loose.passed and loose.alias_event is not None and loose.alias_event.moved
    assert loose.version.ref == "clf@3" and loose.version.aliases == ["edge"]
    assert client.models.get("clf").aliases == {"edge": 3}
    kinds = [e.kind for e in client.models.history("clf", "edge")]
    assert kinds == ["promoted", "rejected", "set"]

    loaded = client.models.load("clf@edge")
    assert loaded.meta.flavor == "onnx" and loaded.classes == [0, 1]
    rows = cancer.drop(columns=["target"]).head(50)
    assert np.mean(loaded.predict(rows) == mlp.predict(rows)) >= 0.95
    np.testing.assert_allclose(loaded.predict_proba(rows).sum(axis=1), 1.0, rtol=1e-5)
    upstream = client.models.lineage("clf@3")["upstream"]
    assert {(n["ref"], n["relation"]) for n in upstream} == {("clf@1", "compressed")}
    [evaluation] = client.models.evaluations("clf@3")
    assert evaluation.task == "compression" and evaluation.dataset_ref == "cancer@1"
    assert evaluation.metrics["size_ratio"] == pytest.approx(loose.size_ratio, 1e-3)


def test_bad_requests_are_one_clear_error(
    client: Any, cancer_csv: Path, mlp: Any, cancer: pd.DataFrame
) -> None:
    _register(client, cancer_csv, mlp, cancer)
    with pytest.raises(InvalidInput, match="did you mean 'onnx-int8'"):
        client.models.compress("clf@1", "onnx-int9")
    with pytest.raises(InvalidInput, match="compresses torch models; clf@1 is a sklearn model"):
        client.models.compress("clf@1", "dynamic-int8")
    with pytest.raises(NotFound):
        client.models.compress("clf@7", "onnx-int8")
    with pytest.raises(InvalidInput, match="between 0 and 1"):
        client.models.compress("clf@1", "prune", amount=1.5)
    with pytest.raises(InvalidInput, match="--amount is for prune"):
        client.models.compress("clf@1", "onnx-int8", amount=0.5)
    with pytest.raises(InvalidInput, match="together"):
        client.models.compress("clf@1", "onnx-int8", data="cancer@1")
    with pytest.raises(InvalidInput, match="no column 'nope'"):
        client.models.compress("clf@1", "onnx-int8", data="cancer@1", target="nope")
    assert [v.ref for v in client.models.versions("clf").items] == ["clf@1"]


def test_rest_answers_4xx_with_the_message(
    sqlite_url: str, tmp_path: Path, cancer_csv: Path, mlp: Any, cancer: pd.DataFrame
) -> None:
    from opsloop import Client

    with LiveServer(sqlite_url, str(tmp_path / "server-blobs")) as server:
        with Client(server_url=server.url) as client:
            _register(client, cancer_csv, mlp, cancer)
        url = f"{server.url}/api/models/clf/versions/1/compress"
        cases = [
            ({"method": "onnx-int9"}, 400, "did you mean 'onnx-int8'"),
            ({"method": "prune"}, 400, "compresses torch models"),
            ({"method": "prune", "amount": 0}, 400, "between 0 and 1"),
            ({"method": "onnx-int8", "max_quality_drop": -1}, 400, "max-quality-drop"),
        ]
        for body, code, message in cases:
            answer = httpx.post(url, json=body, timeout=60)
            assert answer.status_code == code and message in answer.json()["error"]["message"]
        missing = httpx.post(url.replace("/1/", "/9/"), json={"method": "onnx-int8"}, timeout=60)
        assert missing.status_code == 404
        done = httpx.post(url, json={"method": "onnx-int8", "min_size_ratio": 1.5}, timeout=120)
        assert done.status_code == 201, done.text
        result = done.json()
        assert result["version"]["tags"]["compressed_from"] == "clf@1"
        assert result["quality"] is None and not result["verdict"]["passed"]  # no data: unmeasured
        assert "not measured" in result["verdict"]["rules"][1]["detail"]


def _cli(*args: str, code: int) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([*OPSLOOP, *args], capture_output=True, text=True, timeout=300)
    assert done.returncode == code, (args, done.returncode, done.stdout, done.stderr)
    return done


def test_cli_compress_prints_the_verdict_and_exits_by_it(
    cancer_csv: Path, mlp: Any, cancer: pd.DataFrame
) -> None:
    from opsloop import Client

    with Client() as client:  # the CLI's own store: $OPSLOOP_HOME
        _register(client, cancer_csv, mlp, cancer)
    data = ["--data", "cancer@1", "--target", "target"]
    shown = _cli("models", "compress", "clf@1", "--method", "onnx-int8", *data,
                 "--min-size-ratio", "1.5", "--max-quality-drop", "0.05", "--alias", "edge",
                 code=0).stdout  # fmt: skip
    assert "registered clf@2: onnx-int8 of clf@1" in shown and "x smaller" in shown
    assert "accuracy on cancer@1" in shown and "passed: clf@edge → clf@2" in shown
    failed = _cli("models", "compress", "clf@1", "--method", "onnx-int8", *data,
                  "--min-size-ratio", "1000", "--alias", "edge", "--json", code=1)  # fmt: skip
    result = json.loads(failed.stdout)
    assert result["version"]["number"] == 3 and result["verdict"]["passed"] is False
    assert result["alias_event"]["kind"] == "rejected"
    for args, message in [  # the rest of the bad input: through the SDK and REST above
        (["--method", "onnx-int9"], "did you mean 'onnx-int8'"),
        (["--method", "dynamic-int8"], "is a sklearn model"),
    ]:
        err = _cli("models", "compress", "clf@1", *args, code=2).stderr
        assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


# -- torch: a tiny GPT-2 built from a config --------------------------------------------------


def _tiny_lm() -> tuple[Any, Any]:
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    import torch
    from transformers import GPT2Config
    from transformers import GPT2LMHeadModel

    from tests.gateway import chat_lm

    tokenizer = chat_lm.build_tokenizer()
    torch.manual_seed(0)
    config = GPT2Config(
        vocab_size=len(tokenizer), n_positions=64, n_embd=64, n_layer=2, n_head=2,
        bos_token_id=tokenizer.eos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )  # fmt: skip
    return tokenizer, GPT2LMHeadModel(config).eval()


def test_a_tiny_causal_lm_through_dynamic_int8_and_pruning(sqlite_url: str, tmp_path: Path) -> None:
    import torch

    from opsloop import Client
    from tests.gateway import chat_lm

    tokenizer, lm = _tiny_lm()
    texts = pd.DataFrame({"text": [f"{q}\n{a}" for q, a in chat_lm.ANSWERS.items()]})
    texts.to_csv(tmp_path / "texts.csv", index=False)
    ids = np.array([[5, 6, 7, 8, 9, 10, 11, 12]])
    with Client(database_url=sqlite_url, blob_url=str(tmp_path / "blobs")) as client:
        client.data.add(tmp_path / "texts.csv", name="texts")
        client.models.register("lm", lm, input_example=ids, flavor_options={"tokenizer": tokenizer})
        int8 = client.models.compress(
            "lm@1", "dynamic-int8", data="texts@1", target="text", min_size_ratio=1.5
        )
        assert int8.passed and int8.compressed_bytes < int8.original_bytes / 1.5
        quality = int8.quality
        assert quality is not None and quality.metric == "loss" and not quality.higher_is_better
        assert abs(quality.drop) < 0.01 and quality.perplexity_after == pytest.approx(
            np.exp(quality.after)
        )
        assert int8.version.tags["compressed_from"] == "lm@1"
        with torch.no_grad():
            expected = lm(torch.as_tensor(ids)).logits.numpy()
        got = client.models.load(int8.version.ref).predict(ids)
        np.testing.assert_allclose(got, expected, atol=0.05)

        with pytest.raises(InvalidInput, match="onnx-int8 compresses scikit-learn and ONNX"):
            client.models.compress("lm@1", "onnx-int8")
        pruned = client.models.compress("lm@1", "prune", amount=0.5, min_size_ratio=0.9)
        assert pruned.sparsity == pytest.approx(0.5, abs=0.01)
        assert pruned.quality is None and not pruned.passed  # quality not measured: no --data
        assert pruned.size_ratio == pytest.approx(1.0, abs=0.05)  # dense storage: no smaller
        assert any("stored dense" in note for note in pruned.notes)
        loaded = client.models.load(pruned.version.ref)
        weight = loaded.raw.transformer.h[0].mlp.c_fc.weight
        assert float((weight == 0).float().mean()) == pytest.approx(0.5, abs=0.01)
        assert loaded.raw.tokenizer is not None  # a pruned LM keeps its tokenizer
