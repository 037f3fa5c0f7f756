"""The registry through the SDK, on local and HTTP backends over SQLite and PostgreSQL: the
same behaviour, the same errors, and nothing changed by a refused request."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from opsloop.errors import Conflict
from opsloop.errors import InvalidInput
from opsloop.errors import NotFound
from opsloop.errors import PermissionDenied
from opsloop.errors import StoreError

from .conftest import COLUMNS
from .conftest import PlusOne
from .conftest import policy


def _register(client: Any, model: Any, frame: pd.DataFrame, name: str = "cancer-clf") -> Any:
    return client.models.register(name, model, input_example=frame.drop(columns=["target"]).head())


def test_register_load_predict_matches_the_trained_model(
    client: Any, weak_model: Any, cancer: pd.DataFrame
) -> None:
    version = _register(client, weak_model, cancer)
    assert (version.ref, version.flavor, version.task) == (
        "cancer-clf@1",
        "sklearn",
        "classification",
    )
    assert [c.name for c in version.signature.inputs.columns] == COLUMNS
    assert version.classes == [0, 1]
    assert any(r.startswith("scikit-learn==") for r in version.requirements)
    loaded = client.models.load("cancer-clf@1")
    features = cancer.drop(columns=["target"])
    np.testing.assert_array_equal(loaded.predict(features), weak_model.predict(features))
    # records and dict-of-columns inputs go through the same signature
    records = features.head(2).to_dict("records")
    np.testing.assert_array_equal(loaded.predict(records), weak_model.predict(features.head(2)))
    assert client.models.register("cancer-clf", weak_model).number == 2  # not deduplicated


def test_predict_names_the_bad_column_and_its_type(
    client: Any, weak_model: Any, cancer: pd.DataFrame
) -> None:
    _register(client, weak_model, cancer)
    loaded = client.models.load("cancer-clf")
    row = cancer.drop(columns=["target"]).head(1).to_dict("records")[0]
    with pytest.raises(InvalidInput, match=r"column 'mean radius' expects float, got .*'big'"):
        loaded.predict([{**row, "mean radius": "big"}])
    with pytest.raises(InvalidInput, match=r"missing 1 column.*'worst area' \(float\)"):
        loaded.predict([{k: v for k, v in row.items() if k != "worst area"}])


def test_versions_from_runs_must_come_from_finished_runs(
    client: Any, weak_model: Any, cancer: pd.DataFrame, tmp_path: Path
) -> None:
    from opsloop.registry.package import write_package

    exp = client.set_experiment("registry")
    run = client.create_run(exp.experiment_id)
    run_id = run.info.run_id
    write_package(weak_model, tmp_path / "pkg", input_example=cancer.drop(columns=["target"]))
    client.log_artifacts(run_id, tmp_path / "pkg", "model")
    with pytest.raises(Conflict, match="still running"):
        client.models.register("from-run", run_id=run_id)
    with pytest.raises(NotFound):
        client.models.get("from-run")  # the refused request created nothing
    client.end_run(run_id)
    version = client.models.register("from-run", run_id=run_id, description="first")
    assert version.run_id == run_id and version.source == f"runs:/{run_id}/model"
    with pytest.raises(NotFound, match="no artifacts under 'elsewhere'"):
        client.models.register("from-run", run_id=run_id, artifact_path="elsewhere")
    failed = client.create_run(exp.experiment_id)
    client.log_artifacts(failed.info.run_id, tmp_path / "pkg", "model")
    client.end_run(failed.info.run_id, status="FAILED")
    with pytest.raises(Conflict, match="FAILED"):
        client.models.register("from-run", run_id=failed.info.run_id)
    graph = client.models.lineage("from-run@1")
    assert graph["upstream"][0]["id"] == run_id
    assert [v.number for v in client.models.versions("from-run").items] == [1]


def test_aliases_history_and_refused_deletes(
    client: Any, weak_model: Any, cancer: pd.DataFrame
) -> None:
    _register(client, weak_model, cancer)
    _register(client, weak_model, cancer)
    assert client.models.set_alias("cancer-clf@1", "champion", reason="first").aliases == [
        "champion"
    ]
    assert client.models.version("cancer-clf@champion").number == 1
    assert client.models.get("cancer-clf").aliases == {"champion": 1}
    with pytest.raises(Conflict, match=r"alias\(es\) \['champion'\]"):
        client.models.delete_version("cancer-clf@1")
    with pytest.raises(Conflict, match="still has aliases"):
        client.models.delete("cancer-clf")
    assert client.models.version("cancer-clf@1").number == 1  # untouched
    client.models.delete_version("cancer-clf@2")
    with pytest.raises(NotFound):
        client.models.version("cancer-clf@2")
    with pytest.raises(NotFound, match="no alias 'staging'"):
        client.models.version("cancer-clf@staging")
    with pytest.raises(NotFound, match="not registered"):
        client.models.load("nope@1")
    with pytest.raises(InvalidInput, match="cannot be moved"):
        client.models.set_alias("cancer-clf@1", "latest")
    client.models.delete_alias("cancer-clf", "champion")
    kinds = [(e.kind, e.from_number, e.to_number) for e in client.models.history("cancer-clf")]
    assert kinds == [("delete", 1, None), ("set", None, 1)]


def test_evaluate_records_metrics_slices_plots_and_card(
    client: Any, strong_model: Any, cancer: pd.DataFrame, cancer_csv: Path
) -> None:
    client.data.add(cancer_csv, name="cancer", push=True)
    _register(client, strong_model, cancer)
    result = client.models.evaluate(
        "cancer-clf@1", "cancer@1", target="target", slices=["mean radius"], latency_samples=5
    )
    assert result.evaluation_id and result.dataset_ref == "cancer@1"
    assert result.metrics["accuracy"] > 0.85 and 0 < result.metrics["roc_auc"] <= 1
    assert result.metrics["latency_p99_ms"] > 0
    report = client.models.evaluation(result.evaluation_id).report
    short = client.models.evaluation(result.evaluation_id[:8])  # the id as the tool prints it
    assert short.evaluation_id == result.evaluation_id
    assert sum(g["rows"] for g in report["slices"]["mean radius"].values()) == len(cancer)
    assert np.sum(report["confusion_matrix"]["matrix"]) == len(cancer)
    assert report["plots"]["confusion_matrix"].lstrip().startswith("<?xml")
    assert 0 <= report["calibration"]["ece"] <= 1
    client.models.update_version("cancer-clf@1", card={"intended_use": "triage research only"})
    card = client.models.card("cancer-clf@1")
    assert card["evaluations"][0]["data"] == "cancer@1"
    assert card["sections"]["intended_use"] == "triage research only"
    text = client.models.card("cancer-clf@1", markdown=True)
    assert "triage research only" in text and "| mean radius | float |" in text
    with pytest.raises(InvalidInput, match="no target column 'label'"):
        client.models.evaluate("cancer-clf@1", "cancer@1", target="label")


def test_promotion_gate_moves_the_alias_only_on_a_pass(
    client: Any, weak_model: Any, strong_model: Any, cancer: pd.DataFrame, cancer_csv: Path
) -> None:
    client.data.add(cancer_csv, name="cancer", push=True)
    _register(client, strong_model, cancer)
    _register(client, weak_model, cancer)
    with pytest.raises(InvalidInput, match="no gate policy"):
        client.models.promote("cancer-clf@1", "champion")
    bad = policy(rules=[{"metric": "f2", "min": 0.5}])
    with pytest.raises(InvalidInput, match="unknown metric 'f2'"):
        client.models.promote("cancer-clf@1", "champion", policy=bad)
    assert client.models.history("cancer-clf") == []  # refused before anything was recorded

    first = client.models.promote("cancer-clf@1", "champion", policy=policy())
    assert first.kind == "promoted" and first.moved
    assert first.verdict["champion"] is None and first.verdict["passed"]

    weaker = client.models.promote("cancer-clf@2", "champion", policy=policy())
    assert weaker.kind == "rejected" and not weaker.moved
    rule = weaker.verdict["rules"][0]
    assert rule["metric"] == "f1" and not rule["passed"] and rule["improvement"] < 0.01
    assert weaker.verdict["champion"]["ref"] == "cancer-clf@1"
    assert client.models.get("cancer-clf").aliases == {"champion": 1}

    with pytest.raises(InvalidInput, match="needs a reason"):
        client.models.promote("cancer-clf@2", "champion", force=True)
    forced = client.models.promote("cancer-clf@2", "champion", force=True, reason="rollback drill")
    assert forced.kind == "forced" and forced.reason == "rollback drill"
    assert client.models.version("cancer-clf@champion").number == 2
    history = [(e.kind, e.moved) for e in client.models.history("cancer-clf", "champion")]
    assert history == [("forced", True), ("rejected", False), ("promoted", True)]
    evaluated = client.models.evaluations("cancer-clf@1")
    assert len(evaluated) == 2 and all(e.dataset_ref == "cancer@1" for e in evaluated)


def test_stored_policy_with_behavioural_checks(
    client: Any, strong_model: Any, weak_model: Any, cancer: pd.DataFrame, cancer_csv: Path
) -> None:
    client.data.add(cancer_csv, name="cancer", push=True)
    _register(client, weak_model, cancer)
    _register(client, strong_model, cancer)
    checks = [
        {
            "name": "bigger-tumours-are-not-more-benign",
            "type": "directional",
            "column": "worst area",
            "perturb": {"multiply": 3.0},
            "expect": "no_increase",
        }
    ]
    gated = policy(
        rules=[{"metric": "f1", "min_improvement": 0.01}],
        checks=checks,
        prediction_regression={"max_changed_fraction": 0.0},
    )
    client.models.update("cancer-clf", gate_policy=gated)
    assert client.models.promote("cancer-clf@1", "champion").moved
    event = client.models.promote("cancer-clf@2", "champion")
    names = {c["name"]: c for c in event.verdict["checks"]}
    assert names["bigger-tumours-are-not-more-benign"]["passed"]
    regression = names["prediction_regression"]
    assert regression["changed"] > 0 and not regression["passed"] and not event.moved


def test_pickled_packages_need_trust(client: Any) -> None:
    version = client.models.register(
        "plus-one", PlusOne(), flavor="pyfunc", input_example=pd.DataFrame({"x": [1.0, 2.0]})
    )
    assert version.flavor == "pyfunc"
    with pytest.raises(PermissionDenied, match="runs pickled code"):
        client.models.load("plus-one@1")
    assert list(client.models.load("plus-one@1", trusted=True).predict({"x": [1.0]})) == [2.0]
    with pytest.raises(InvalidInput, match="no safe flavor"):
        client.models.register("plus-one", PlusOne())


def test_not_a_package_and_missing_blobs_are_refused(client: Any, tmp_path: Path) -> None:
    from opsloop.registry.entities import ModelVersionCreate

    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "weights.bin").write_bytes(b"123")
    with pytest.raises(InvalidInput, match="not a model package"):
        client.models.register("junk", path=tmp_path / "junk")
    body = ModelVersionCreate(files=[("opsloop-model.json", "a" * 64, 3)])
    with pytest.raises(InvalidInput, match="not in the blob store"):
        client.models._backend.register_version("junk", body)
    with pytest.raises(NotFound):
        client.models.get("junk")


def test_corrupted_package_is_detected_not_loaded(
    tmp_path: Path, weak_model: Any, cancer: pd.DataFrame
) -> None:
    from opsloop import Client

    client = Client(database_url=f"sqlite:///{tmp_path / 'c.db'}", blob_url=str(tmp_path / "b"))
    version = _register(client, weak_model, cancer)
    client.models.load(version.ref)  # a good load materialises the package once
    _, manifest = client.models._backend.get_manifest(version.ref)
    model_file = manifest.by_path["model.skops"]
    blob = Path(client.data._cache.path_of(model_file.digest))
    blob.chmod(0o644)
    with open(blob, "r+b") as fh:  # flip bytes in place (the local copy shares the inode)
        fh.seek(100)
        fh.write(b"\x00\x01\x02\x03")
    with pytest.raises(StoreError, match="corrupted"):
        client.models.load(version.ref)
    client.close()


def test_onnx_models_load_through_onnxruntime(
    client: Any, strong_model: Any, cancer: pd.DataFrame, tmp_path: Path
) -> None:
    from skl2onnx import to_onnx

    features = cancer.drop(columns=["target"]).to_numpy(dtype=np.float32)
    onnx_model = to_onnx(strong_model, features[:1])
    version = client.models.register("cancer-onnx", onnx_model, input_example=features[:5])
    assert version.flavor == "onnx"
    assert version.signature.inputs.tensor.shape == [-1, len(COLUMNS)]
    loaded = client.models.load(version.ref)
    expected = strong_model.predict(pd.DataFrame(features, columns=COLUMNS))
    np.testing.assert_array_equal(loaded.predict(features), expected)
    proba = loaded.predict_proba(features[:3])
    first = pd.DataFrame(features[:3], columns=COLUMNS)
    np.testing.assert_allclose(proba, strong_model.predict_proba(first), atol=1e-5)
    with pytest.raises(InvalidInput, match="shape"):
        loaded.predict(np.zeros((2, 3), dtype=np.float32))
    path = tmp_path / "model.onnx"
    path.write_bytes(onnx_model.SerializeToString())
    from_file = client.models.register("cancer-onnx", path=path, input_example=features[:5])
    assert from_file.number == 2 and from_file.package_id == version.package_id


def test_a_version_a_deployment_serves_cannot_be_deleted(
    tmp_path: Path, weak_model: Any, cancer: pd.DataFrame
) -> None:
    """Serving records ``deployment -serves-> model_version`` edges; deletion honours them."""
    from opsloop import Client
    from opsloop.lineage import graph
    from opsloop.registry.models import MODEL_VERSION

    client = Client(database_url=f"sqlite:///{tmp_path / 'd.db'}", blob_url=str(tmp_path / "b"))
    version = _register(client, weak_model, cancer)
    store = client.models._backend.store
    with store.write() as session:
        graph.add_edge(
            session, ("deployment", "churn-api"), (MODEL_VERSION, version.version_id), "serves"
        )
    with pytest.raises(Conflict, match=r"served by deployment\(s\) \['churn-api'\]"):
        client.models.delete_version(version.ref)
    with pytest.raises(Conflict, match="churn-api"):
        client.models.delete("cancer-clf")
    assert client.models.version(version.ref).number == 1
    client.close()


def test_a_package_whose_signature_contradicts_its_model_is_refused_at_load(
    tmp_path: Path, weak_model: Any
) -> None:
    from opsloop.registry.package import load_package
    from opsloop.registry.package import write_package
    from opsloop.registry.signature import ColumnSpec
    from opsloop.registry.signature import Schema
    from opsloop.registry.signature import Signature

    wrong = Signature(inputs=Schema(columns=[ColumnSpec(name="age", type="float")]))
    write_package(weak_model, tmp_path / "pkg", signature=wrong)
    with pytest.raises(InvalidInput, match="trained on columns"):
        load_package(tmp_path / "pkg")
