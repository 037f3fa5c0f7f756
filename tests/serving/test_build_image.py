"""``opsloop deployments build-image`` (and ``models build-image``): an image built with buildah
for a small scikit-learn model, run (podman, or chroot into its root where podman cannot run
containers) to answer a prediction; the image's user, health check and reuse of its layers; and
a lock that cannot be met refused with one line that names the package.

The image is built once for the module (a cold build is most of this file's time) and the
checks of its configuration, its layers' reuse and its answers share it; none changes it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

import opsloop
from opsloop.errors import InvalidInput
from opsloop.registry.package import write_package
from opsloop.serving.image_lock import needed_distributions
from tests.conftest import free_port
from tests.registry.conftest import COLUMNS
from tests.serving.conftest import rows

OPSLOOP = str(Path(sys.executable).with_name("opsloop"))
STORAGE = ["--storage-driver", "vfs"]
# podman on a machine without CAP_SYS_RESOURCE and with cgroups v1: runc (crun refuses hybrid
# cgroups) and limits at or below the caller's (raising them is refused).
PODMAN = ["podman", *STORAGE, "--runtime", "runc", "--cgroup-manager", "cgroupfs"]
PODMAN_RUN = ["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024", "--network", "host"]
needs_buildah = pytest.mark.skipif(
    shutil.which("buildah") is None,
    reason="buildah is not installed (apt-get install -y buildah podman runc): no image to build",
)


def _cli(
    *args: str, code: int = 0, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([OPSLOOP, *args], capture_output=True, text=True, timeout=900, env=env)
    assert done.returncode == code, (args, done.stdout, done.stderr)
    return done


def test_a_lock_that_cannot_be_met_names_the_package() -> None:
    with pytest.raises(InvalidInput, match=r"scikit-learn==0\.0\.1 .* cannot be met, this envir"):
        needed_distributions(["scikit-learn==0.0.1"])
    with pytest.raises(InvalidInput, match=r"no-such-dist-for-opsloop>=1 .* is not installed here"):
        needed_distributions(["no-such-dist-for-opsloop>=1"])


def test_only_the_lock_and_the_image_server_are_packed() -> None:
    names = {d.name.lower() for d in needed_distributions(["scikit-learn", "skops", "pandas"])}
    assert {"scikit-learn", "scipy", "numpy", "skops", "pandas", "pydantic"} <= names
    # opsloop's own server, store and plotting stacks stay out.
    assert not names & {"fastapi", "uvicorn", "sqlalchemy", "duckdb", "matplotlib", "pyarrow"}


@pytest.fixture(scope="module", autouse=True)
def _image_storage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """buildah's and podman's image storage (the same ``vfs`` driver) in a folder of this
    module's own, in memory where there is room: ``vfs`` copies every layer in full at each
    step, and a cold build measured 117 s on disk against 54 s in /dev/shm (load 7, 2 cores).
    It also keeps the tests' images out of the machine's store, and the store's out of them."""
    shm = Path("/dev/shm")
    room = shm.is_dir() and shutil.disk_usage(shm).free > 4 * 2**30  # peak use ~2 GB
    near = shm if room else tmp_path_factory.getbasetemp()
    folder = Path(tempfile.mkdtemp(prefix="opsloop-images-", dir=near))
    conf = folder / "storage.conf"
    conf.write_text(
        f'[storage]\ndriver = "vfs"\ngraphroot = "{folder / "root"}"\n'
        f'runroot = "{folder / "run"}"\n'
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CONTAINERS_STORAGE_CONF", str(conf))
        yield
    shutil.rmtree(folder)


@pytest.fixture(scope="module")
def built(
    tmp_path_factory: pytest.TempPathFactory, weak_model: Any, cancer: Any
) -> SimpleNamespace:
    """``build-image clf --json``'s answer, and the environment (``env``) of its embedded
    store, this module's own, where deployment ``clf`` serves cancer-clf v1."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OPSLOOP_HOME", str(tmp_path_factory.mktemp("image-home")))
        for name in ("OPSLOOP_SERVER_URL", "OPSLOOP_DATABASE_URL", "OPSLOOP_BLOB_URL"):
            patch.delenv(name, raising=False)
        env = dict(os.environ)
        client = opsloop.Client()
        client.models.register("cancer-clf", weak_model, input_example=cancer[COLUMNS].head())
        client.deployments.deploy("cancer-clf@1", name="clf")
        client.close()
    answer = json.loads(_cli("deployments", "build-image", "clf", "--json", env=env).stdout)
    return SimpleNamespace(answer=answer, env=env)


def _image_config(tag: str) -> dict[str, Any]:
    done = subprocess.run(
        ["buildah", *STORAGE, "inspect", "--type", "image", tag],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return json.loads(done.stdout)["Docker"]["config"]


def _healthy(port: int, process: subprocess.Popen[bytes], deadline_s: float = 120) -> bool:
    """Polls /healthz until it answers 200 (True) or the process ends (False)."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    return False


@contextmanager
def _served(tag: str) -> Iterator[int]:
    """The image's server on a free port: in podman, else (where podman cannot run a
    container) its entrypoint chrooted into the image's root as the image's user."""
    port = free_port()
    name = f"opsloop-test-{port}"
    if shutil.which("podman") and shutil.which("runc"):
        env = ["-e", f"OPSLOOP_SERVE_PORT={port}"]
        command = [*PODMAN, "run", "--rm", "--name", name, *PODMAN_RUN, *env, tag]
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            if _healthy(port, process):
                yield port
                return
        finally:
            subprocess.run([*PODMAN, "rm", "-f", name], capture_output=True, check=False)
            process.wait(timeout=60)
    yield from _chrooted(tag, port)


def _chrooted(tag: str, port: int) -> Iterator[int]:
    config = _image_config(tag)
    buildah = ["buildah", *STORAGE]
    run = {"capture_output": True, "text": True, "check": True}
    container = subprocess.run([*buildah, "from", "--pull-never", tag], **run).stdout.strip()
    try:
        root = subprocess.run([*buildah, "mount", container], **run).stdout.strip()
        env = dict(line.split("=", 1) for line in config["Env"])
        env["OPSLOOP_SERVE_PORT"] = str(port)
        chroot = shutil.which("chroot") or "/usr/sbin/chroot"  # found on this PATH, not the image's
        command = [chroot, f"--userspec={config['User']}", root, *config["Entrypoint"]]
        process = subprocess.Popen(command, env=env)
        try:
            assert _healthy(port, process), "the image's server did not start in its root"
            yield port
        finally:
            process.terminate()
            process.wait(timeout=60)
    finally:
        subprocess.run([*buildah, "rm", container], capture_output=True, check=False)


@needs_buildah
@pytest.mark.slow
def test_the_image_runs_as_a_user_with_a_health_check(built: SimpleNamespace) -> None:
    answer = built.answer
    assert answer["tag"] == "opsloop/clf:1"  # what `deployments export clf --k8s` runs
    assert "scikit-learn" in {pin.split("==")[0] for pin in answer["distributions"]}
    config = _image_config(answer["tag"])
    assert config["User"] == "10001:10001"  # not root
    assert "--check" in config["Healthcheck"]["Test"]
    assert config["Labels"]["io.opsloop.model"] == "cancer-clf@1"


@needs_buildah
@pytest.mark.slow
def test_a_rebuild_of_an_unchanged_model_reuses_every_layer(built: SimpleNamespace) -> None:
    again = json.loads(_cli("deployments", "build-image", "clf", "--json", env=built.env).stdout)
    assert again["reused"] == ["base", "deps", "code", "model"]  # nothing changed
    assert again["image_id"] == built.answer["image_id"]


@needs_buildah
@pytest.mark.slow
def test_the_image_answers_a_prediction(
    built: SimpleNamespace, weak_model: Any, cancer: Any
) -> None:
    sent = rows(cancer, n=3)
    with _served(built.answer["tag"]) as port:
        answer = httpx.post(
            f"http://127.0.0.1:{port}/invocations", json={"dataframe_records": sent}, timeout=30
        )
        unfit = {"records": [{"x": 1}]}
        bad = httpx.post(f"http://127.0.0.1:{port}/invocations", json=unfit)
        bad_here = httpx.post(f"http://127.0.0.1:{port}/predict", json=unfit)
    assert answer.status_code == 200, answer.text
    expected = weak_model.predict(cancer[COLUMNS].iloc[:3]).tolist()
    assert answer.json() == {"predictions": expected}
    assert bad.status_code == 400 and "mean radius" in bad.json()["message"]  # MLflow's shape
    assert bad_here.status_code == 422 and bad_here.json()["error"]["code"] == "INVALID_INPUT"


@needs_buildah
def test_a_lock_that_cannot_be_met_is_refused_before_building(
    weak_model: Any, cancer: Any, tmp_path: Path
) -> None:
    folder = tmp_path / "package"
    write_package(weak_model, folder, input_example=cancer[COLUMNS].head(),
                  requirements=["scikit-learn==0.0.1"])  # fmt: skip
    client = opsloop.Client()
    client.models.register("pinned", path=folder)
    client.deployments.deploy("pinned@1", name="pinned")
    client.close()
    done = _cli("deployments", "build-image", "pinned", code=2)
    message = done.stderr.strip()
    assert "scikit-learn==0.0.1" in message and "cannot be met" in message
    assert len(message.splitlines()) == 1
