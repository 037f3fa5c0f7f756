"""The files of an image's base: this machine's Python and the Debian libraries it links to.

No registry image can be pulled where images are built, so the base is assembled from files
already here: the interpreter that runs opsloop (its standard library without the test suite,
IDLE, Tk and the build configuration; measured at ~60 MB, against ~200 MB for a Debian
``debootstrap --variant=minbase`` root before Python is even added) and the shared libraries
every ELF file in the image needs, copied from the Debian packages installed here, found by
asking the dynamic loader (``ldd``). There is no shell and no package manager in the image.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from collections.abc import Iterable
from collections.abc import Iterator
from pathlib import Path

__all__ = [
    "LIBRARY_PATH",
    "PREFIX",
    "PYTHON",
    "USER_ID",
    "elf_files",
    "interpreter_files",
    "passwd_files",
    "system_libraries",
]

PREFIX = "/opt/opsloop/python"  # the interpreter's prefix in the image
PYTHON = f"{PREFIX}/bin/python3"
# The interpreter's run path names its folder on this machine; the image says where it is.
LIBRARY_PATH = f"{PREFIX}/lib:/lib/x86_64-linux-gnu:/usr/lib/x86_64-linux-gnu"
USER_ID = 10001  # the non-root user the image runs as (the Kubernetes manifests' runAsUser)
# Parts of the standard library a server never imports (190 MB of the 250 MB installed), and
# the byte code compiled for ``python -O`` (``.opt-1.pyc``, ``.opt-2.pyc``), which it never runs.
_LEFT_OUT = {
    "site-packages", "test", "idlelib", "tkinter", "turtledemo", "ensurepip", "lib2to3",
    "pydoc_data", "__phello__",
}  # fmt: skip
_LEFT_OUT_PREFIXES = ("config-", "_tkinter")


def interpreter_files() -> list[tuple[Path, str]]:
    """(file here, its path in the image) for the running interpreter, under :data:`PREFIX`."""
    prefix = Path(sys.base_prefix)
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    executable = Path(sys.base_prefix) / "bin" / version
    files = [(executable.resolve(), f"{PREFIX}/bin/{version}")]
    library = sysconfig.get_config_var("INSTSONAME")
    if library and (prefix / "lib" / library).is_file():
        files.append(((prefix / "lib" / library).resolve(), f"{PREFIX}/lib/{library}"))
    stdlib = prefix / "lib" / version
    for path in _walk(stdlib):
        files.append((path, f"{PREFIX}/lib/{version}/{path.relative_to(stdlib).as_posix()}"))
    return files


def _walk(root: Path) -> Iterator[Path]:
    for folder, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in _LEFT_OUT and not d.startswith("config-"))
        for name in sorted(names):
            if not name.startswith(_LEFT_OUT_PREFIXES) and ".opt-" not in name:
                yield Path(folder) / name


def elf_files(paths: Iterable[Path]) -> list[Path]:
    """The shared objects and executables among ``paths`` (what the loader will open)."""
    found = []
    for path in paths:
        if path.suffix == ".so" or ".so." in path.name or path.parent.name == "bin":
            with path.open("rb") as handle:
                if handle.read(4) == b"\x7fELF":
                    found.append(path)
    return found


def system_libraries(elf: list[Path], inside: tuple[Path, ...]) -> list[Path]:
    """The libraries of this machine ``elf`` files link to, other than those under ``inside``
    (which the image carries already: the interpreter's, the wheels' own), with the loader."""
    libraries: set[Path] = set()
    for start in range(0, len(elf), 200):  # one ldd for many files: it forks per file anyway
        out = subprocess.run(
            ["ldd", *map(str, elf[start : start + 200])],
            capture_output=True, text=True, check=False,
        ).stdout  # fmt: skip
        for line in out.splitlines():
            parts = line.split()
            path = next((Path(p) for p in parts if p.startswith("/")), None)
            if path is None or not path.exists() or line.rstrip().endswith(":"):
                continue
            if not any(path.is_relative_to(root) for root in inside):
                libraries.add(path)
    return sorted(libraries)


def passwd_files(user: str = "opsloop") -> dict[str, str]:
    """/etc/passwd and /etc/group with root and the server's user (no shell, no login)."""
    return {
        "/etc/passwd": f"root:x:0:0:root:/root:/sbin/nologin\n"
        f"{user}:x:{USER_ID}:{USER_ID}:opsloop serve:/var/lib/opsloop:/sbin/nologin\n",
        "/etc/group": f"root:x:0:\n{user}:x:{USER_ID}:\n",
    }
