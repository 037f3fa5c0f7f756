"""The embedded store's quick reads (plain ``sqlite3``) answer exactly as the ORM services do,
and a listing process never imports SQLAlchemy."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from opsloop import Client
from opsloop import InvalidInput
from opsloop import NotFound
from opsloop.kernel.paging import encode_page_token
from opsloop.tracking import experiments
from opsloop.tracking import search
from opsloop.tracking.quick_reads import QuickReads
from opsloop.tracking.quick_reads import open_quick_reads


@pytest.fixture
def seeded(tmp_path: Path) -> tuple[str, list[str]]:
    """A store with live and deleted experiments and runs, tags, params, metrics, notes and
    nested runs; started at tied and distinct times (ordering ties break by id)."""
    url = f"sqlite:///{tmp_path / 'opsloop.db'}"
    rng = random.Random(7)
    with Client(database_url=url, blob_url=str(tmp_path / "blobs")) as client:
        ids = []
        for i in range(7):
            tags = {"team": f"t{i % 3}", "i": str(i)} if i % 2 else None
            ids.append(client.create_experiment(f"exp-{i}", description=f"d{i}", tags=tags)
                       .experiment_id)  # fmt: skip
        client.delete_experiment(ids[5])
        for n in range(40):
            exp = ids[rng.randrange(len(ids))]
            if exp == ids[5]:
                continue
            run = client.create_run(exp, run_name=f"r{n}", capture_env=False,
                                    tags={"k": str(n)} if n % 3 else None)  # fmt: skip
            run_id = run.info.run_id
            if n % 2:
                client.log_params(run_id, {"lr": n / 10, "depth": n})
            for step in range(n % 4):
                client.log_metric(run_id, "loss", 1 / (step + 1 + n), step=step)
            if n % 5 == 0:
                client.update_run(run_id, notes=f"note {n}")
            if n % 7 == 0:
                client.delete_run(run_id)
            if n % 4 == 0:
                client.end_run(run_id)  # the others stay RUNNING
    return url, ids


@pytest.fixture
def both(seeded: tuple[str, list[str]]) -> tuple[Any, QuickReads, list[str]]:
    from opsloop.schema import open_store

    url, ids = seeded
    quick = open_quick_reads(url)
    assert quick is not None
    yield open_store(url), quick, ids
    quick.close()


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


def test_experiments_read_as_the_orm_does(both: tuple[Any, QuickReads, list[str]]) -> None:
    store, quick, ids = both
    with store.read() as s:
        for experiment_id in [*ids, "0" * 32, "nope"]:
            _same(lambda e=experiment_id: experiments.get_experiment(s, e),
                  lambda e=experiment_id: quick.get_experiment(e))  # fmt: skip
        for name in ["exp-0", "exp-1", "exp-5", "missing", ""]:
            _same(lambda n=name: experiments.get_experiment_by_name(s, n),
                  lambda n=name: quick.get_experiment_by_name(n))  # fmt: skip
        tokens = [None, encode_page_token(0), encode_page_token(2), encode_page_token(99),
                  "garbage!", encode_page_token(-1)]  # fmt: skip
        for view in ("active", "deleted", "all", "weird"):
            for size in (1, 2, 3, 1000):
                for token in tokens:
                    _same(
                        lambda v=view, m=size, t=token: experiments.list_experiments(
                            s, view=v, max_results=m, page_token=t),
                        lambda v=view, m=size, t=token: quick.list_experiments(v, m, t),
                    )  # fmt: skip


def test_run_listings_read_as_the_orm_does(both: tuple[Any, QuickReads, list[str]]) -> None:
    store, quick, ids = both
    rng = random.Random(3)
    choices = [[], ids, ids[:1], ids[1:4], [ids[5]], ["0" * 32], *([rng.sample(ids, 3)] * 3)]
    with store.read() as s:
        for chosen in choices:
            for view in ("active", "deleted", "all", "weird"):
                for size in (1, 3, 100):
                    for token in (None, encode_page_token(4), "garbage!"):
                        _same(
                            lambda c=chosen, v=view, m=size, t=token: search.search_runs(
                                s, c, max_results=m, page_token=t, view=v),
                            lambda c=chosen, v=view, m=size, t=token: quick.search_runs(
                                c, m, t, v),
                        )  # fmt: skip


def test_a_client_on_an_existing_store_reads_through_them(seeded: tuple[str, list[str]]) -> None:
    url, _ = seeded
    with Client(database_url=url) as client:
        page = client.search_runs(None, max_results=5)
        assert len(page.items) == 5 and page.next_page_token
        assert client.get_experiment_by_name("exp-1").tags == {"team": "t1", "i": "1"}
        filtered = client.search_runs(None, "metrics.loss > 0.01", order_by=["params.depth"])
        assert filtered.items  # a filter goes through the ORM's search, same client
        created = client.create_experiment("later")  # a write opens the store
        assert client.get_experiment(created.experiment_id) == created


def test_another_schema_revision_is_left_to_the_store(seeded: tuple[str, list[str]]) -> None:
    import sqlite3

    url, _ = seeded
    path = url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as db:
        db.execute("UPDATE alembic_version SET version_num = 'older'")
    assert open_quick_reads(url) is None
    assert open_quick_reads(url + "-missing") is None
    assert open_quick_reads("postgresql://localhost/x") is None


@pytest.mark.parametrize(
    "argv", [["experiments", "list"], ["experiments", "show", "exp-1"], ["runs", "list"]]
)
def test_listing_commands_never_import_sqlalchemy(
    seeded: tuple[str, list[str]], tmp_path: Path, argv: list[str]
) -> None:
    url, _ = seeded
    probe = (
        "import sys\n"
        "from opsloop.app.cli import main\n"
        "try:\n"
        f"    main({argv!r})\n"
        "except SystemExit as exit:\n"
        "    assert not exit.code, exit.code\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('sqlalchemy', 'torch'))\n"
        "print('LOADED', loaded)\n"
    )
    env = {"OPSLOOP_DATABASE_URL": url, "OPSLOOP_BLOB_URL": str(tmp_path / "blobs"),
           "OPSLOOP_HOME": str(tmp_path / "home"), "PATH": "/usr/bin:/bin"}  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "LOADED []" in done.stdout, done.stdout[-500:]
