"""Background work is authored by the user who asked for it (issue 23): a pipeline run the
scheduler starts for a trigger is the trigger creator's run, not the server's OS user's; on a
real server in ``users`` mode, SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from typing import Any

import opsloop
from opsloop.kernel.identity import current_principal
from opsloop.kernel.identity import current_user
from opsloop.kernel.identity import os_user
from opsloop.workflows.authors import author_principal
from opsloop.workflows.authors import run_as
from opsloop.workflows.scheduler import Scheduler

TARGET = "tests.pipelines.example:training"


def test_a_triggered_run_is_its_trigger_creators(users_server: Any) -> None:
    state = users_server.server.app.state.opsloop
    with opsloop.Client(server_url=users_server.url, token=users_server.keys["mona"]) as mona:
        mona.triggers.create("nightly", TARGET, "webhook")
        mona.triggers.fire("nightly", key="one", params={"C": 0.5})
        scheduler = Scheduler(state.client, state.store, None, None)
        try:
            scheduler.run_pending_firings(wait=True)
        finally:
            scheduler.stop()
        (firing,) = mona.triggers.firings("nightly")
        assert firing.status == "succeeded", firing.message
        run = mona.get_run(firing.run_id)
    assert run.info.user_id == "mona" != os_user()
    assert current_principal() is None  # nothing leaked into the calling thread


def test_run_as_acts_in_a_context_of_its_own(users_server: Any) -> None:
    state = users_server.server.app.state.opsloop
    with state.store.read() as session:
        mona, ghost = author_principal(session, "mona"), author_principal(session, "ghost")
    assert (mona.role, mona.auth, bool(mona.user_id)) == ("maintainer", "background", True)
    assert (ghost.role, ghost.user_id) == ("viewer", "")  # an author the server has no user for
    seen: list[str] = []

    def work() -> str:
        seen.append(current_user())
        return "done"

    worker = threading.Thread(target=lambda: seen.append(run_as(mona, work)))
    worker.start()
    worker.join()
    assert seen == ["mona", "done"]
    assert run_as(None, current_user) == os_user() == current_user()
