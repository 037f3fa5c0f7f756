"""Container images that serve one model version, built with Debian's ``buildah``.

An image is four layers, each an image of its own tagged by the hash of what went into it, so
a build reuses every layer whose inputs have not changed (a rebuild of an unchanged model is
a tag lookup; a new version of the model rebuilds only the last layer)::

    base   this machine's Python and the Debian libraries it links to (opsloop.serving.image_base)
    deps   the distributions the model's lock and the image server need, and no others
           (opsloop.serving.image_lock), with the libraries their own binaries link to
    code   opsloop's own modules (the package reader, the image server)
    model  the package files stored by content (/opt/opsloop/blobs/<BLAKE3>), the package
           folder as links to them, the non-root user, the health check, the entrypoint

Layers are filled by writing into ``buildah mount``'s folder (no shell, no package manager in
the image) and committed in Docker's format, the one that keeps ``HEALTHCHECK``. Storage is
``vfs`` and isolation ``chroot``: both work on machines that cannot run nested overlays or
user namespaces. Example::

    built = build_image(Path("pkg"), "iris@1", "opsloop/iris:1", Buildah())
    built.tag, built.size
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from opsloop.data.manifest import FileEntry
from opsloop.data.manifest import Manifest
from opsloop.errors import InvalidInput
from opsloop.errors import OpsloopError
from opsloop.registry.package import META_FILE
from opsloop.registry.package import PackageMeta
from opsloop.serving import image_base
from opsloop.serving.image_lock import Distribution
from opsloop.serving.image_lock import needed_distributions
from opsloop.store.blobs import hash_file

__all__ = ["BUILDER_VERSION", "Buildah", "BuiltImage", "build_image"]

BUILDER_VERSION = "1"  # in every layer's hash: a change to how layers are made rebuilds them
SITE = "/opt/opsloop/site"  # the distributions
CODE = "/opt/opsloop/code"  # opsloop's modules
MODEL = "/opt/opsloop/model"  # the package folder (links into BLOBS)
BLOBS = "/opt/opsloop/blobs"
HOME = "/var/lib/opsloop"
PORT = 8080
_LAYERS = "localhost/opsloop-layer"
_COMMAND = """#!{python}
import sys
from opsloop.serving.image_server import main
raise SystemExit(main(sys.argv[1:]))
"""


@dataclass(frozen=True)
class BuiltImage:
    """What a build made: the tag, its size, which layers were reused and the packages in it."""

    tag: str
    image_id: str
    size: int
    reused: tuple[str, ...]
    distributions: tuple[str, ...]
    package_id: str


class Buildah:
    """``buildah`` on ``vfs`` storage with chroot isolation (``storage`` overrides the driver).

    Raises:
        InvalidInput: buildah is not installed.
        OpsloopError: A buildah command failed (its last line of error in the message).
    """

    def __init__(self, storage: str = "vfs") -> None:
        if shutil.which("buildah") is None:
            raise InvalidInput("buildah is not installed: apt-get install -y buildah")
        self.storage = storage

    def __call__(self, *args: str) -> str:
        env = {**os.environ, "BUILDAH_ISOLATION": "chroot"}
        done = subprocess.run(
            ["buildah", "--storage-driver", self.storage, *args],
            capture_output=True, text=True, env=env, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["(no message)"])[-1]
            raise OpsloopError(f"buildah {args[0]} failed: {last}")
        return done.stdout.strip()

    def exists(self, tag: str) -> bool:
        """Whether an image ``tag`` is in the local storage."""
        listed = self("images", "--noheading", "--format", "{{.Name}}:{{.Tag}}", "--filter",
                      f"reference={tag}")  # fmt: skip
        return bool(listed)

    def layer(
        self, parent: str | None, tag: str, fill: Callable[[Path], None], *config: str
    ) -> bool:
        """Commit ``tag`` as ``parent`` plus what ``fill`` writes into its root folder and the
        ``buildah config`` options ``config``; nothing when ``tag`` exists. True if it existed."""
        if self.exists(tag):
            return True
        container = self("from", "--pull-never", parent or "scratch")
        try:
            fill(Path(self("mount", container)))
            if config:
                self("config", *config, container)
            self("commit", "--quiet", "--format", "docker", container, tag)
        finally:
            self("rm", container)
        return False

    def size(self, tag: str) -> tuple[str, int]:
        """The image's id and its size in bytes: its layers' uncompressed tar files."""
        info = json.loads(self("inspect", "--type", "image", tag))
        layers = json.loads(info["Manifest"])["layers"]
        return info["FromImageID"], sum(int(layer["size"]) for layer in layers)


def build_image(package: Path, ref: str, tag: str, buildah: Buildah) -> BuiltImage:
    """Build (or reuse) the image ``tag`` that serves the package folder ``package`` (``ref``).

    Raises:
        InvalidInput: ``package`` is not a model package, or its lock cannot be met here (the
            message names the package).
        OpsloopError: buildah failed.
    """
    if not (package / META_FILE).is_file():
        raise InvalidInput(f"{package} holds no {META_FILE}; it is not an opsloop model package")
    meta = PackageMeta.parse((package / META_FILE).read_bytes())
    distributions = needed_distributions(meta.requirements)  # before any work: the lock is met
    manifest = Manifest(
        [FileEntry(p.relative_to(package).as_posix(), hash_file(p), p.stat().st_size)
         for p in sorted(package.rglob("*")) if p.is_file()]
    )  # fmt: skip
    reused: list[str] = []
    base = _base(buildah, reused)
    deps = _deps(buildah, base, distributions, reused)
    code = _code(buildah, deps, package, reused)
    model = f"{_LAYERS}:model-{_hash(code, manifest.version_id, ref)}"
    if buildah.layer(code, model, lambda root: _fill_model(root, package, manifest), *_config(ref)):
        reused.append("model")
    buildah("tag", model, tag)
    image_id, size = buildah.size(tag)
    return BuiltImage(
        tag, image_id, size, tuple(reused), tuple(d.pin for d in distributions),
        manifest.version_id,
    )  # fmt: skip


def _hash(*parts: str) -> str:
    return hashlib.blake2b(
        "\0".join((BUILDER_VERSION, *parts)).encode(), digest_size=12
    ).hexdigest()


def _copy(source: Path, root: Path, target: str) -> None:
    """``source`` to ``target`` in the image rooted at ``root``, symlinks followed."""
    destination = root / target.lstrip("/")
    destination.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(source, destination)


def _base(buildah: Buildah, reused: list[str]) -> str:
    files = image_base.interpreter_files()
    elf = image_base.elf_files(path for path, _ in files)
    libraries = image_base.system_libraries(elf, (Path(sys.base_prefix),))
    listing = [f"{target}:{path.stat().st_size}" for path, target in files]
    tag = f"{_LAYERS}:base-{_hash(*listing, *map(str, libraries))}"

    def fill(root: Path) -> None:
        for path, target in files:
            _copy(path, root, target)
        for library in libraries:
            _copy(library, root, str(library))
        version = f"python{sys.version_info.major}.{sys.version_info.minor}"
        (root / image_base.PYTHON.lstrip("/")).symlink_to(version)
        (root / "etc").mkdir(exist_ok=True)
        for name, text in image_base.passwd_files().items():
            (root / name.lstrip("/")).write_text(text)
        for folder, mode in (("tmp", 0o1777), (HOME.lstrip("/"), 0o755)):
            (root / folder).mkdir(parents=True, exist_ok=True)
            (root / folder).chmod(mode)
        os.chown(root / HOME.lstrip("/"), image_base.USER_ID, image_base.USER_ID)

    if buildah.layer(None, tag, fill):
        reused.append("base")
    return tag


def _deps(buildah: Buildah, base: str, distributions: list[Distribution], reused: list[str]) -> str:
    tag = f"{_LAYERS}:deps-{_hash(base, *(d.digest() for d in distributions))}"

    def fill(root: Path) -> None:
        for dist in distributions:
            for name in dist.files:
                _copy(dist.root / name, root, f"{SITE}/{name}")
        elf = image_base.elf_files((root / SITE.lstrip("/")).rglob("*.so*"))
        inside = (root, Path(sys.base_prefix))  # the wheels' own libraries are under root
        for library in image_base.system_libraries(elf, inside):
            if not (root / str(library).lstrip("/")).exists():
                _copy(library, root, str(library))

    if buildah.layer(base, tag, fill):
        reused.append("deps")
    return tag


def _code(buildah: Buildah, deps: str, package: Path, reused: list[str]) -> str:
    source = Path(__file__).resolve().parents[1]  # the opsloop package
    files = _modules_used(package, source)
    digest = hashlib.blake2b(digest_size=16)
    for path in files:
        digest.update(path.relative_to(source).as_posix().encode() + b"\0" + path.read_bytes())
    tag = f"{_LAYERS}:code-{_hash(deps, digest.hexdigest())}"

    def fill(root: Path) -> None:
        for path in files:
            _copy(path, root, f"{CODE}/opsloop/{path.relative_to(source).as_posix()}")
        command = root / "usr/bin/opsloop"  # `opsloop serve`, as the Kubernetes manifests run
        command.parent.mkdir(parents=True, exist_ok=True)
        command.write_text(_COMMAND.format(python=image_base.PYTHON))
        command.chmod(0o755)

    if buildah.layer(deps, tag, fill):
        reused.append("code")
    return tag


def _modules_used(package: Path, source: Path) -> list[Path]:
    """opsloop's module files the image server imports to load and answer ``package``: found by
    doing it in a child process, so that the layer changes only when one of them does."""
    script = (
        "import sys, pathlib, opsloop.serving.image_server as s; "
        "s.load_package(pathlib.Path(sys.argv[1])); "
        "print('\\n'.join(m.__file__ for n, m in list(sys.modules.items()) "
        "if n.split('.')[0] == 'opsloop' and getattr(m, '__file__', None)))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(package)], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["(no message)"])[-1]
        raise InvalidInput(f"the model package does not load here, so no image serves it: {last}")
    used = {Path(line).resolve() for line in done.stdout.splitlines() if line}
    return sorted(path for path in used if path.is_relative_to(source))


def _fill_model(root: Path, package: Path, manifest: Manifest) -> None:
    """Each file once under its digest; the package folder links to them."""
    for entry in manifest.entries:
        blob = root / BLOBS.lstrip("/") / entry.digest
        if not blob.exists():
            _copy(package / entry.path, root, f"{BLOBS}/{entry.digest}")
        link = root / MODEL.lstrip("/") / entry.path
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))


def _config(ref: str) -> list[str]:
    """The image's user, environment, entrypoint, health check and labels."""
    python = image_base.PYTHON
    check = f"{python} -m opsloop.serving.image_server --check"  # buildah splits on spaces
    environment = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": f"{CODE}:{SITE}",
        "PYTHONDONTWRITEBYTECODE": "1",  # the root file system may be read-only
        "LD_LIBRARY_PATH": image_base.LIBRARY_PATH,
        "OPSLOOP_HOME": HOME,
        "OPSLOOP_IMAGE_MODEL": MODEL,
        "OPSLOOP_IMAGE_REF": ref,
        "OPSLOOP_SERVE_PORT": str(PORT),
    }
    options = [
        "--user", f"{image_base.USER_ID}:{image_base.USER_ID}",
        "--workingdir", HOME,
        "--port", f"{PORT}/tcp",
        "--entrypoint", json.dumps([python, "-m", "opsloop.serving.image_server"]),
        "--cmd", "",
        "--healthcheck", f"CMD {check}",
        "--healthcheck-interval", "10s",
        "--healthcheck-timeout", "3s",
        "--healthcheck-start-period", "30s",
        "--healthcheck-retries", "3",
        "--label", f"io.opsloop.model={ref}",
    ]  # fmt: skip
    for key, value in environment.items():
        options += ["--env", f"{key}={value}"]
    return options
