"""PyTorch and transformers packages: safetensors weights rebuilt by installed classes, on the
local and HTTP backends. Real models, trained or built from a config here (no model hub)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from opsloop.errors import InvalidInput
from opsloop.errors import PermissionDenied

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")


class TinyNet(torch.nn.Module):
    """A two-layer classifier; ``hidden`` is its constructor argument."""

    def __init__(self, features: int = 4, hidden: int = 8) -> None:
        super().__init__()
        self.layers = torch.nn.Sequential(
            torch.nn.Linear(features, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 2)
        )

    def forward(self, x: Any) -> Any:
        return self.layers(x)


def _trained() -> tuple[TinyNet, np.ndarray]:
    torch.manual_seed(0)
    X = np.random.default_rng(0).normal(size=(64, 4)).astype(np.float32)
    y = torch.as_tensor((X[:, 0] > 0).astype(np.int64))
    net = TinyNet(hidden=6)
    optimizer = torch.optim.Adam(net.parameters(), lr=0.05)
    for _ in range(50):
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(net(torch.as_tensor(X)), y)
        loss.backward()
        optimizer.step()
    return net.eval(), X


def test_torch_module_round_trip(client: Any) -> None:
    net, X = _trained()
    version = client.models.register(
        "tiny-net", net, input_example=X[:4], flavor_options={"init": {"hidden": 6}}
    )
    assert version.flavor == "pytorch" and version.signature.inputs.tensor.shape == [-1, 4]
    assert any(r.startswith("torch==") for r in version.requirements)
    loaded = client.models.load(version.ref)
    with torch.no_grad():
        expected = net(torch.as_tensor(X)).numpy()
    np.testing.assert_allclose(loaded.predict(X), expected, rtol=1e-6)
    np.testing.assert_allclose(loaded.predict_proba(X[:2]).sum(axis=1), [1.0, 1.0], rtol=1e-6)
    with pytest.raises(InvalidInput, match="shape"):
        loaded.predict(np.zeros((2, 3), dtype=np.float32))


def test_a_tampered_class_path_is_refused(tmp_path: Path) -> None:
    from opsloop.registry.package import load_package
    from opsloop.registry.package import write_package

    net, X = _trained()
    write_package(
        net, tmp_path / "pkg", input_example=X[:2], flavor_options={"init": {"hidden": 6}}
    )
    spec_path = tmp_path / "pkg" / "model" / "module.json"
    spec = json.loads(spec_path.read_text())
    spec.update({"class": "os:system", "init": {"command": "echo pwned"}})
    spec_path.write_text(json.dumps(spec))
    with pytest.raises(PermissionDenied, match=r"not a torch\.nn\.Module"):
        load_package(tmp_path / "pkg")


def test_transformers_model_built_from_a_config(client: Any) -> None:
    config = transformers.BertConfig(
        vocab_size=40,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=16,
        num_labels=2,
    )
    torch.manual_seed(0)
    model = transformers.BertForSequenceClassification(config).eval()
    ids = np.random.default_rng(1).integers(1, 40, size=(3, 8)).astype(np.int64)
    version = client.models.register("tiny-bert", model, input_example=ids)
    assert version.flavor == "pytorch"
    loaded = client.models.load(version.ref)
    with torch.no_grad():
        expected = model(torch.as_tensor(ids)).logits.numpy()
    np.testing.assert_allclose(loaded.predict(ids), expected, rtol=1e-5, atol=1e-6)
