"""Kubernetes manifests for a deployment: what ``opsloop deployments export NAME --k8s`` writes.

Pure functions from the :class:`Deployment` to plain dicts (a ConfigMap, a Deployment, a
Service and, when it autoscales, a HorizontalPodAutoscaler), ready for YAML or JSON. The pods
run ``opsloop serve`` for this one deployment: they read its traffic policy and models from
the shared store (its URLs and token come from a Secret the operator creates, never from these
files), so a traffic change or a rollout needs no new manifest.

Probes: readiness on ``/healthz`` (200 once the models are loaded and while the metadata store
answers: a pod that cannot read its deployment takes no traffic); liveness on ``/ping`` (the
process answers), so a store outage takes pods out of the Service without restarting them all;
a startup probe on ``/ping`` gives model loading its time before liveness counts.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

from opsloop.errors import InvalidInput
from opsloop.serving.entities import Deployment

__all__ = [
    "APP_LABEL",
    "HOME",
    "K8sOptions",
    "default_image",
    "manifests",
    "object_name",
    "parse_autoscale",
]

APP_LABEL = "opsloop-serve"
HOME = "/var/lib/opsloop"  # OPSLOOP_HOME in the pod: the prediction log's journals (emptyDir)
USER_ID = 10001  # the non-root user the image runs as
_MAX_NAME = 63  # a DNS-1035 label: Service names are held to it
_NOT_LABEL = re.compile(r"[^a-z0-9-]+")


@dataclass(frozen=True)
class K8sOptions:
    """How the deployment runs on the cluster. ``replicas`` fixes the pod count; ``autoscale``
    (min, max) adds an HPA on ``cpu_target`` percent of the CPU request instead."""

    image: str
    replicas: int | None = None
    autoscale: tuple[int, int] | None = (2, 6)
    port: int = 8080
    secret: str = "opsloop-store"
    cpu_target: int = 70
    cpu_request: str = "500m"
    memory_request: str = "512Mi"
    memory_limit: str = "2Gi"


def parse_autoscale(text: str) -> tuple[int, int]:
    """``MIN,MAX`` replicas, 1 <= MIN <= MAX."""
    parts = [p.strip() for p in text.split(",")]
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        raise InvalidInput(f"--autoscale {text!r}: write MIN,MAX replicas, e.g. 2,6")
    low, high = int(parts[0]), int(parts[1])
    if not 1 <= low <= high:
        raise InvalidInput(f"--autoscale {text!r}: need 1 <= MIN <= MAX")
    return low, high


def object_name(deployment: str) -> str:
    """The deployment's name on the cluster: ``opsloop-<name>`` as a DNS label (lower case,
    letters, digits and dashes, at most 63), with a short hash of the name when it had to be
    changed, so two opsloop names never meet as one."""
    slug = _NOT_LABEL.sub("-", deployment.lower()).strip("-")
    name = f"opsloop-{slug}" if slug else "opsloop"
    if slug != deployment:
        digest = hashlib.blake2b(deployment.encode(), digest_size=3).hexdigest()
        name = f"{name[: _MAX_NAME - 7].rstrip('-')}-{digest}"
    return name[:_MAX_NAME].rstrip("-")


def default_image(deployment: Deployment) -> str:
    """The tag ``opsloop deployments build-image`` gives: ``opsloop/<name>:<stable version>``."""
    repository = object_name(deployment.name).removeprefix("opsloop-") or "serve"
    return f"opsloop/{repository}:{deployment.policy.stable}"


def manifests(deployment: Deployment, options: K8sOptions) -> list[dict[str, Any]]:
    """The documents to apply, in order: ConfigMap, Deployment, Service (and the HPA)."""
    if (options.replicas is None) == (options.autoscale is None):
        raise InvalidInput("give --replicas (a fixed count) or --autoscale MIN,MAX, not both")
    if options.replicas is not None and options.replicas < 1:
        raise InvalidInput(f"--replicas {options.replicas}: at least 1")
    if not 1 <= options.port <= 65535:
        raise InvalidInput(f"--port {options.port}: a TCP port, 1-65535")
    name = object_name(deployment.name)
    labels = {"app.kubernetes.io/name": APP_LABEL, "app.kubernetes.io/instance": name}
    config = _config_map(_metadata(name, labels, deployment), deployment, options)
    documents = [
        config,
        _deployment(_metadata(name, labels, deployment), labels, options, config["data"]),
        _service(_metadata(name, labels, deployment), labels),
    ]
    if options.autoscale is not None:
        meta = _metadata(name, labels, deployment)
        documents.append(_autoscaler(meta, name, options.autoscale, options.cpu_target))
    return documents


def _metadata(name: str, labels: dict[str, str], deployment: Deployment) -> dict[str, Any]:
    """Each document's own copy (YAML would write a shared dict as anchors and aliases)."""
    annotations = {
        "opsloop.io/deployment": deployment.name,
        # At export time; the pods read the live policy from the store.
        "opsloop.io/model": deployment.ref(deployment.policy.stable),
        "opsloop.io/policy": deployment.policy.describe(),
    }
    return {"name": name, "labels": dict(labels), "annotations": annotations}


def _config_map(meta: dict[str, Any], deployment: Deployment, opts: K8sOptions) -> dict[str, Any]:
    """What ``opsloop serve`` reads from its environment (every key is one of its settings)."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": meta,
        "data": {
            "OPSLOOP_SERVE_DEPLOYMENT": deployment.name,
            "OPSLOOP_SERVE_HOST": "0.0.0.0",  # a pod listens on its own address
            "OPSLOOP_SERVE_PORT": str(opts.port),
            "OPSLOOP_HOME": HOME,
        },
    }


def _probe(path: str, period: int, failures: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": "http"},
        "periodSeconds": period,
        "timeoutSeconds": 2,
        "failureThreshold": failures,
    }


def _deployment(
    meta: dict[str, Any], labels: dict[str, str], opts: K8sOptions, config: dict[str, str]
) -> dict[str, Any]:
    container = {
        "name": "serve",
        "image": opts.image,
        "command": ["opsloop", "serve"],
        "ports": [{"name": "http", "containerPort": opts.port, "protocol": "TCP"}],
        "envFrom": [
            {"configMapRef": {"name": meta["name"]}},
            # OPSLOOP_DATABASE_URL, OPSLOOP_BLOB_URL, OPSLOOP_TOKEN: the store every replica
            # shares, created by the operator (see the README), never written here.
            {"secretRef": {"name": opts.secret}},
        ],
        "resources": {
            "requests": {"cpu": opts.cpu_request, "memory": opts.memory_request},
            "limits": {"memory": opts.memory_limit},  # no CPU limit: throttling hurts p99
        },
        "readinessProbe": _probe("/healthz", 5, 3),
        "livenessProbe": _probe("/ping", 10, 3),
        "startupProbe": _probe("/ping", 2, 60),  # up to 2 minutes to load the models
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [
            {"name": "home", "mountPath": HOME},
            {"name": "tmp", "mountPath": "/tmp"},  # the pod's own emptyDir
        ],
    }
    # Pods roll when the ConfigMap they read changes (Kubernetes does not do it by itself).
    config_hash = hashlib.blake2b(repr(sorted(config.items())).encode(), digest_size=8)
    pod = {
        "metadata": {
            "labels": dict(labels),
            "annotations": {"opsloop.io/config-hash": config_hash.hexdigest()},
        },
        "spec": {
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": USER_ID,
                "runAsGroup": USER_ID,
                "fsGroup": USER_ID,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            # `opsloop serve` drains for up to 30 s on SIGTERM: requests in flight finish,
            # shadow copies finish, the prediction log is sealed.
            "terminationGracePeriodSeconds": 45,
            "containers": [container],
            "volumes": [{"name": "home", "emptyDir": {}}, {"name": "tmp", "emptyDir": {}}],
        },
    }
    replicas = opts.replicas if opts.replicas is not None else opts.autoscale[0]  # type: ignore[index]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta,
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": dict(labels)},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
            },
            "template": pod,
        },
    }


def _service(meta: dict[str, Any], labels: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta,
        "spec": {
            "type": "ClusterIP",
            "selector": dict(labels),
            "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}],
        },
    }


def _autoscaler(
    meta: dict[str, Any], name: str, bounds: tuple[int, int], cpu_target: int
) -> dict[str, Any]:
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": meta,
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "minReplicas": bounds[0],
            "maxReplicas": bounds[1],
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": cpu_target},
                    },
                }
            ],
        },
    }
