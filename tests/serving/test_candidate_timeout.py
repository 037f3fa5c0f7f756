"""A candidate that hangs: its callers get the stable version's answer after the timeout, and
the hang is logged against the candidate (which a rollout's error-rate check then rolls back)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

import opsloop
from tests.serving.slow_net import Net


def test_a_hanging_canary_is_answered_for_by_the_stable_version(
    sqlite_url: str, tmp_path: Path
) -> None:
    client = opsloop.Client(database_url=sqlite_url, blob_url=str(tmp_path / "blobs"))
    example = np.zeros((2, 4), dtype=np.float32)
    torch.manual_seed(0)
    client.models.register("net", Net(), input_example=example, flavor_options={"init": {}})
    client.models.register(
        "net", Net(delay=5.0), input_example=example, flavor_options={"init": {"delay": 5.0}}
    )
    client.deployments.deploy("net@1", name="net")
    client.deployments.deploy("net@2", name="net", canary=100)
    runtime = client.deployments._backend.runtime  # the local backend's in-process runtime
    runtime.candidate_timeout = 0.5
    answer = client.deployments.predict("net", {"instances": [[0.1, 0.2, 0.3, 0.4]]})
    assert answer["model"] == "net@1" and answer["fallback_from"] == "net@2"
    logged = client.deployments.predictions("net")
    hung = logged[logged["version"] == 2]
    assert hung["error"].iloc[0] == "TimeoutError: candidate v2 did not answer within 0.5 s"
    assert runtime.log.window("net", 2, 0)["errors"] == 1
    client.close()
