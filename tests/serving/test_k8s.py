"""``opsloop deployments export NAME --k8s``: manifests that the Kubernetes models of the
``kubernetes`` client accept field for field, whose labels, selectors, ports and probes agree
across the Deployment, Service and HPA, whose ConfigMap and probes ``opsloop serve`` really
answers to, and one-line errors for what cannot be exported."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

import opsloop
from opsloop.serving.k8s import object_name
from tests.conftest import free_port
from tests.serving.conftest import register_two
from tests.serving.conftest import rows

OPSLOOP = str(Path(sys.executable).with_name("opsloop"))
MODELS = {
    "ConfigMap": "V1ConfigMap",
    "Deployment": "V1Deployment",
    "Service": "V1Service",
    "HorizontalPodAutoscaler": "V2HorizontalPodAutoscaler",
}


def _cli(*args: str, code: int = 0) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([OPSLOOP, *args], capture_output=True, text=True, timeout=120)
    assert done.returncode == code, (args, done.stdout, done.stderr)
    return done


@pytest.fixture
def deployed(weak_model: Any, strong_model: Any, cancer: Any) -> None:
    """``clf``: cancer-clf v1 stable with v2 as a 10% canary, in the test's embedded store."""
    client = opsloop.Client()
    register_two(client, weak_model, strong_model, cancer)
    client.deployments.deploy("cancer-clf@1", name="clf")
    client.deployments.deploy("cancer-clf@2", name="clf", canary=10)
    client.close()


def _validated(document: dict[str, Any]) -> Any:
    """The document as the client's model, which must hold every field we wrote: serialised
    back, it is the same document (an unknown or mistyped field would be dropped or refused)."""
    from kubernetes.client import ApiClient

    api = ApiClient()
    model = api._ApiClient__deserialize(document, MODELS[document["kind"]])  # type: ignore[attr-defined]
    assert api.sanitize_for_serialization(model) == document
    return model


def _by_kind(documents: list[dict[str, Any]]) -> dict[str, Any]:
    return {d["kind"]: _validated(d) for d in documents}


def test_manifests_are_valid_and_agree(deployed: None) -> None:
    listing = json.loads(_cli("deployments", "export", "clf", "--k8s", "--json").stdout)
    assert listing["kind"] == "List"  # `kubectl apply -f` takes it as it is
    kinds = [d["kind"] for d in listing["items"]]
    assert kinds == ["ConfigMap", "Deployment", "Service", "HorizontalPodAutoscaler"]
    k8s = _by_kind(listing["items"])
    config, deployment, service, hpa = (k8s[k] for k in kinds)

    name = deployment.metadata.name
    assert name == "opsloop-clf" == service.metadata.name == config.metadata.name
    assert deployment.metadata.annotations["opsloop.io/model"] == "cancer-clf@1"
    assert "10%" in deployment.metadata.annotations["opsloop.io/policy"]
    selector = deployment.spec.selector.match_labels
    assert selector == deployment.spec.template.metadata.labels == service.spec.selector
    assert hpa.spec.scale_target_ref.name == name and hpa.spec.scale_target_ref.kind == "Deployment"
    assert (
        (hpa.spec.min_replicas, hpa.spec.max_replicas)
        == (2, 6)
        == (
            deployment.spec.replicas,
            6,
        )
    )
    assert hpa.spec.metrics[0].resource.name == "cpu"
    assert hpa.spec.metrics[0].resource.target.average_utilization == 70

    pod = deployment.spec.template.spec
    (container,) = pod.containers
    assert container.image == "opsloop/clf:1"  # what build-image will tag: NAME:stable version
    (port,) = container.ports
    assert service.spec.ports[0].target_port == port.name == "http"
    assert container.readiness_probe.http_get.path == "/healthz"
    assert container.liveness_probe.http_get.path == "/ping"
    for probe in (container.readiness_probe, container.liveness_probe, container.startup_probe):
        assert probe.http_get.port == port.name
    assert pod.security_context.run_as_non_root and pod.security_context.run_as_user > 0
    assert container.security_context.read_only_root_filesystem
    assert not container.security_context.allow_privilege_escalation
    assert container.resources.requests["cpu"]  # the HPA's utilisation is of this request
    assert container.env_from[0].config_map_ref.name == config.metadata.name
    assert container.env_from[1].secret_ref.name == "opsloop-store"
    home = config.data["OPSLOOP_HOME"]
    assert home in {m.mount_path for m in container.volume_mounts}  # writable: an emptyDir
    assert config.data["OPSLOOP_SERVE_DEPLOYMENT"] == "clf"
    assert config.data["OPSLOOP_SERVE_PORT"] == str(port.container_port)


def test_yaml_file_sizing_and_image(deployed: None, tmp_path: Path) -> None:
    done = _cli("deployments", "export", "clf", "--k8s", "--out", str(tmp_path / "k8s"),
                "--replicas", "3", "--image", "registry.example.com/clf:7")  # fmt: skip
    path = tmp_path / "k8s" / "opsloop-clf.yaml"
    assert path.name in done.stdout
    text = path.read_text()
    assert "&id" not in text  # no YAML anchors: each document stands alone
    k8s = _by_kind(list(yaml.safe_load_all(text)))
    assert set(k8s) == {"ConfigMap", "Deployment", "Service"}  # a fixed count: no autoscaler
    assert k8s["Deployment"].spec.replicas == 3
    assert k8s["Deployment"].spec.template.spec.containers[0].image == "registry.example.com/clf:7"

    scaled = yaml.safe_load_all(_cli("deployments", "export", "clf", "--k8s", "--autoscale",
                                     "3,12", "--port", "9000").stdout)  # fmt: skip
    k8s = _by_kind(list(scaled))
    assert (k8s["HorizontalPodAutoscaler"].spec.min_replicas, k8s["Deployment"].spec.replicas) == (
        3,
        3,
    )
    assert k8s["HorizontalPodAutoscaler"].spec.max_replicas == 12
    assert k8s["Deployment"].spec.template.spec.containers[0].ports[0].container_port == 9000


def test_bad_input_is_one_line(deployed: None, tmp_path: Path) -> None:
    def refused(*args: str, words: str) -> None:
        done = _cli("deployments", "export", *args, code=2 if "clf" in args else 3)
        assert done.stderr.count("\n") == 1 and words in done.stderr, done.stderr

    refused("cfl", "--k8s", words="did you mean 'clf'")
    for bad in ("3", "5,2", "0,4", "a,b", "1,2,3"):
        refused("clf", "--k8s", "--autoscale", bad, words="--autoscale")
    refused("clf", "--k8s", "--replicas", "2", "--autoscale", "2,4", words="not both")
    refused("clf", "--k8s", "--replicas", "0", words="at least 1")
    refused("clf", words="--k8s")
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    refused("clf", "--k8s", "--out", str(blocker / "k8s"), words="cannot write")


def test_object_names_are_dns_labels() -> None:
    label = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
    for name in ("clf", "Churn_Model v2", "x" * 300, "é", "churn.model"):
        assert label.fullmatch(object_name(name)) and len(object_name(name)) <= 63, name
    assert object_name("churn") == "opsloop-churn"
    assert object_name("Churn") != object_name("churn")  # never two deployments as one


def test_serve_runs_from_the_configmap_and_answers_its_probes(
    deployed: None, tmp_path: Path, cancer: Any
) -> None:
    """The pod's contract, run here: `opsloop serve` with the ConfigMap's environment (the
    Secret's store URLs pointing at this test's store) answers the probes and /invocations."""
    listing = json.loads(_cli("deployments", "export", "clf", "--k8s", "--json").stdout)
    config, deployment = listing["items"][0], listing["items"][1]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    home = Path(os.environ["OPSLOOP_HOME"])
    port = free_port()
    env = {
        **os.environ,
        **config["data"],
        "OPSLOOP_SERVE_HOST": "127.0.0.1",
        "OPSLOOP_SERVE_PORT": str(port),
        "OPSLOOP_HOME": str(tmp_path / "pod-home"),  # the pod's emptyDir
        "OPSLOOP_DATABASE_URL": f"sqlite:///{home / 'opsloop.db'}",  # the Secret's
        "OPSLOOP_BLOB_URL": str(home / "blobs"),
    }
    command = [OPSLOOP, *container["command"][1:]]
    server = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, server.stdout.read().decode()  # type: ignore[union-attr]
            try:
                if httpx.get(url + container["startupProbe"]["httpGet"]["path"]).is_success:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline
            time.sleep(0.2)
        for probe in ("readinessProbe", "livenessProbe"):
            assert httpx.get(url + container[probe]["httpGet"]["path"]).status_code == 200
        answer = httpx.post(f"{url}/invocations", json={"dataframe_records": rows(cancer, 2)})
        assert answer.status_code == 200 and len(answer.json()["predictions"]) == 2
    finally:
        server.send_signal(signal.SIGTERM)
        assert server.wait(30) in (0, -signal.SIGTERM)
