"""``opsloop models build-image NAME@ref`` and ``opsloop deployments build-image NAME``: a
container image that serves one model version (:mod:`opsloop.serving.image`). The commands
live here, beside the builder, and are registered in the ``models`` and ``deployments``
groups by whoever assembles the CLI (the ``models`` group sits on the registry floor, below
serving, so it cannot import them itself)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated
from typing import Any

import typer

from opsloop.console.commands import JsonOption
from opsloop.console.commands import RefArg
from opsloop.console.commands import version_ref
from opsloop.console.output import command_client
from opsloop.console.output import console
from opsloop.console.output import print_json

__all__ = ["build_deployment_image", "build_model_image"]

TagOption = Annotated[
    str | None, typer.Option("--tag", help="Image name:tag (default: opsloop/NAME:VERSION).")
]


def build_model_image(ref: RefArg, tag: TagOption = None, json_: JsonOption = False) -> None:
    """Build an OCI image (Docker format, for its HEALTHCHECK) that serves one model version.

      opsloop models build-image iris@1

      podman run -p 8080:8080 opsloop/iris:1    # POST /invocations, GET /healthz

    The image holds only the packages the version's lock and the image server need, copied
    from this environment (a lock this environment cannot meet is refused, naming the
    package), its files stored by content, and runs as a non-root user. Built with buildah;
    layers are reused between builds, so an unchanged model rebuilds in seconds.
    """
    _build(str(version_ref(ref, noun="model")), tag, json_)


def build_deployment_image(name: str, tag: TagOption = None, json_: JsonOption = False) -> None:
    """Build the image of deployment NAME's stable version, tagged as its Kubernetes manifests
    expect (`opsloop deployments export NAME --k8s`)."""
    from opsloop.serving.k8s import default_image

    deployment = command_client().deployments.get(name)
    ref = deployment.ref(deployment.policy.stable)
    _build(ref, tag or default_image(deployment), json_)


def _build(ref: str, tag: str | None, json_: bool) -> None:
    from opsloop.serving.image import Buildah
    from opsloop.serving.image import build_image

    buildah = Buildah()  # checked first: no download for a build that cannot start
    version, folder = _package(command_client(), ref)
    tag = tag or f"opsloop/{version.name.lower()}:{version.version}"
    with console(stderr=True).status(f"building {tag} for {version.ref}"):
        built = build_image(folder, version.ref, tag, buildah)
    if json_:
        print_json(built.__dict__)
        return
    reused = ", ".join(built.reused) or "none"
    typer.echo(f"built {built.tag} ({built.size / 1e6:.1f} MB) serving {version.ref}")
    typer.echo(f"layers reused: {reused}; packages: {len(built.distributions)}")


def _package(client: Any, ref: str) -> tuple[Any, Path]:
    """The version of ``ref`` and a verified local copy of its package folder (the blob
    store's cache, as ``models.load`` reads it)."""
    # The registry has no public read of a version's files yet: its backend's is used here.
    version, manifest = client.models._backend.get_manifest(ref)
    folder = client.data.local_copy(manifest, f"packages/{version.package_id}", verify=True)
    return version, Path(folder)
