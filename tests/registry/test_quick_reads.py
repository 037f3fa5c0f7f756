"""The registry's quick reads (plain ``sqlite3`` on the embedded store) answer exactly as the ORM
services do, and ``models list`` / ``show`` / ``history`` never import SQLAlchemy, pandas,
NumPy, scikit-learn or torch."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from opsloop import Client
from opsloop import InvalidInput
from opsloop import NotFound
from opsloop.kernel.paging import encode_page_token
from opsloop.registry import aliases
from opsloop.registry import models
from opsloop.registry import versions
from opsloop.registry.entities import ModelVersionCreate
from opsloop.registry.quick_reads import QuickReads
from opsloop.registry.quick_reads import open_quick_reads

NAMES = ["churn", "fraud", "empty", "gated"]
PROBES = ["missing", "churm", "frad", "Churn", "bad name!", "", "gone"]
TOKENS = [None, encode_page_token(0), encode_page_token(2), encode_page_token(99),
          "garbage!", encode_page_token(-1)]  # fmt: skip


@pytest.fixture(scope="module")
def seeded(
    tmp_path_factory: pytest.TempPathFactory, strong_model: Any, cancer: pd.DataFrame
) -> str:
    """Models with and without versions, tags, descriptions, cards, aliases (moved, deleted),
    a gate policy, a deleted version and a deleted model, and recorded gate verdicts."""
    from opsloop.schema import open_store

    folder = tmp_path_factory.mktemp("registry-quick")
    url = f"sqlite:///{folder / 'opsloop.db'}"
    with Client(database_url=url, blob_url=str(folder / "blobs")) as client:
        first = client.models.register("churn", strong_model, input_example=cancer.head(),
                                       description="first", tags={"team": "risk"})  # fmt: skip
        _, manifest = client.models._backend.get_manifest(first.ref)
        files = [(e.path, e.digest, e.size) for e in manifest.entries]

        def register(name: str, i: int) -> None:
            body = ModelVersionCreate(
                files=files, source=f"file-{i}", description=f"v{i}" if i % 2 else None,
                tags={"i": str(i), "k": "v"} if i % 3 else None,
                card={"intended_use": f"use {i}"} if i % 4 == 0 else None,
            )  # fmt: skip
            client.models._backend.register_version(name, body)

        for i in range(2, 8):
            register("churn", i)
        for i in range(1, 4):
            register("fraud", i)
        register("gone", 1)
        client.models.create("empty", description="no versions", tags={"a": "1", "b": "2"})
        client.models.create("gated")
        register("gated", 1)
        client.models.set_tag("fraud", "owner", "ana")
        policy = {"data": "cancer@1", "target": "target", "rules": [{"metric": "f1", "min": 0.5}]}
        client.models.update("gated", gate_policy=policy)
        client.models.set_alias("churn@3", "champion")
        client.models.set_alias("churn@5", "challenger")
        client.models.set_alias("churn@5", "shadow", reason="try it")
        client.models.set_alias("churn@6", "champion", reason="better")
        client.models.delete_alias("churn", "shadow")
        client.models.set_alias("fraud@2", "champion")
        client.models.delete_version("churn@4")
        client.models.delete_version("fraud@3")  # the latest: fraud's latest is 2 now
        client.models.delete("gone")
    store = open_store(url)
    with store.write() as s:  # a rejection and a forced move, as gates record them
        verdict = {"passed": False, "rules": [{"rule": "f1", "passed": False, "candidate": 0.5}]}
        aliases.move_alias(s, "churn@7", "champion", kind="rejected", moved=False,
                           created_by="gate", verdict=verdict)  # fmt: skip
        aliases.move_alias(s, "churn@7", "champion", kind="forced", moved=True,
                           created_by="ana", reason="hotfix")  # fmt: skip
    store.dispose()
    return url


@pytest.fixture
def both(seeded: str) -> Iterator[tuple[Any, QuickReads]]:
    from opsloop.schema import open_store

    quick = open_quick_reads(seeded)
    assert quick is not None
    store = open_store(seeded)
    yield store, quick
    quick.close()
    store.dispose()


def _same(orm: Any, quick: Any) -> None:
    """Both return the same value, or raise the same error with the same message."""
    try:
        expected = orm()
    except (InvalidInput, NotFound) as exc:
        with pytest.raises(type(exc)) as got:
            quick()
        assert got.value.message == exc.message
        return
    assert quick() == expected


def _entries(found: tuple[Any, Any]) -> tuple[Any, Any]:
    version, manifest = found
    return version, manifest.entries


def test_models_read_as_the_orm_does(both: tuple[Any, QuickReads]) -> None:
    store, quick = both
    with store.read() as s:
        for name in [*NAMES, *PROBES]:
            _same(lambda n=name: models.get_model(s, n), lambda n=name: quick.get_model(n))
        for size in (1, 2, 3, 100):
            for token in TOKENS:
                _same(lambda m=size, t=token: models.list_models(s, m, t),
                      lambda m=size, t=token: quick.list_models(m, t))  # fmt: skip
    gated = quick.get_model("gated")
    assert gated.gate_policy and gated.latest_version == 1  # the seed is what it says
    assert quick.get_model("churn").aliases == {"challenger": 5, "champion": 7}


def test_versions_read_as_the_orm_does(both: tuple[Any, QuickReads]) -> None:
    store, quick = both
    selectors = ["", "@latest", "@1", "@3", "@4", "@7", "@8", "@0", "@99999", "@champion",
                 "@challenger", "@shadow", "@champoin", "@\u00b2", "@bad alias", "@"]  # fmt: skip
    refs = [f"{name}{sel}" for name in [*NAMES, *PROBES] for sel in selectors]
    with store.read() as s:
        for ref in refs:
            _same(lambda r=ref: versions.get_version(s, r), lambda r=ref: quick.get_version(r))
        for name in [*NAMES, *PROBES]:
            for size in (1, 2, 5, 100):
                for token in TOKENS:
                    _same(lambda n=name, m=size, t=token: versions.list_versions(s, n, m, t),
                          lambda n=name, m=size, t=token: quick.list_versions(n, m, t))  # fmt: skip
        for ref in refs:  # a model load: the version and its package's manifest, as entries
            _same(lambda r=ref: _entries(versions.manifest_of(s, r)),
                  lambda r=ref: _entries(quick.get_manifest(r)))  # fmt: skip
    shown = quick.get_version("churn@5")
    assert shown.aliases == ["challenger"] and shown.tags == {"i": "5", "k": "v"}
    assert [v.number for v in quick.list_versions("churn", 100, None).items] == [7, 6, 5, 3, 2, 1]


def test_alias_history_reads_as_the_orm_does(both: tuple[Any, QuickReads]) -> None:
    store, quick = both
    with store.read() as s:
        for name in [*NAMES, *PROBES]:
            for alias in (None, "champion", "shadow", "nope"):
                _same(lambda n=name, a=alias: aliases.alias_history(s, n, a),
                      lambda n=name, a=alias: quick.alias_history(n, a))  # fmt: skip
    kinds = [e.kind for e in quick.alias_history("churn", "champion")]
    assert kinds == ["forced", "rejected", "set", "set"]
    assert quick.alias_history("churn", "champion")[1].verdict["passed"] is False


def test_a_client_on_an_existing_store_reads_through_them(seeded: str, tmp_path: Path) -> None:
    with Client(database_url=seeded, blob_url=str(tmp_path / "blobs")) as client:
        assert client.models.version("churn@champion").number == 7
        assert len(client.models.list(max_results=2).items) == 2
        client.models.set_version_tag("churn@1", "seen", "yes")  # a write opens the store
        assert client.models.version("churn@1").tags["seen"] == "yes"  # reads see it
        assert client.models.versions("churn", max_results=100_000).items  # past the quick limit
    assert open_quick_reads(seeded + "-missing") is None
    assert open_quick_reads("postgresql://localhost/x") is None


@pytest.mark.parametrize(
    ("argv", "code", "says"),
    [
        (["models", "list"], 0, "churn"),
        (["models", "list", "--json"], 0, '"gated"'),
        (["models", "show", "churn"], 0, "churn@7"),
        (["models", "show", "churn@3"], 0, "churn@3"),
        (["models", "show", "churn@champion", "--json"], 0, '"number": 7'),
        (["models", "history", "churn"], 0, "forced"),
        (["models", "history", "churn@champion"], 0, "hotfix"),
        (["models", "show", "churm@1"], 3, "model 'churm' is not registered"),
        (["models", "show", "churn@4"], 3, "model version churn@4 does not exist"),
    ],
)
def test_registry_reads_import_no_orm_and_no_data_stack(
    seeded: str, tmp_path: Path, argv: list[str], code: int, says: str
) -> None:
    probe = (
        "import sys\n"
        "from opsloop.app.cli import main\n"
        "try:\n"
        f"    main({argv!r})\n"
        "except SystemExit as exit:\n"
        "    print('EXIT', exit.code or 0)\n"
        "heavy = ('sqlalchemy', 'pandas', 'numpy', 'sklearn', 'torch')\n"
        "print('LOADED', sorted({m.split('.')[0] for m in sys.modules} & set(heavy)))\n"
    )
    env = {"OPSLOOP_DATABASE_URL": seeded, "OPSLOOP_BLOB_URL": str(tmp_path / "blobs"),
           "OPSLOOP_HOME": str(tmp_path / "home"), "PATH": "/usr/bin:/bin",
           "COLUMNS": "200"}  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert f"EXIT {code}" in done.stdout, (done.stdout[-500:], done.stderr[-500:])
    assert says in done.stdout + done.stderr
    assert "LOADED []" in done.stdout, done.stdout[-500:]
