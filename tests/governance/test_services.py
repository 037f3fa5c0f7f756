"""Governance's services on SQLite and PostgreSQL, and the identity a request acts as."""

from __future__ import annotations

import contextvars

import pytest

from opsloop.errors import Conflict
from opsloop.errors import InvalidInput
from opsloop.errors import NotFound
from opsloop.errors import PermissionDenied
from opsloop.governance import keys
from opsloop.governance import services
from opsloop.governance.authorizer import UserAuthorizer
from opsloop.governance.entities import KeyCreate
from opsloop.governance.entities import UserCreate
from opsloop.kernel.identity import Principal
from opsloop.kernel.identity import act_as
from opsloop.kernel.identity import current_principal
from opsloop.kernel.identity import current_user
from opsloop.kernel.identity import os_user
from opsloop.schema import open_store

ADMIN = Principal(name="boss", role="admin", auth="users")
MAINTAINER = Principal(name="mona", role="maintainer", auth="users")


def test_users_roles_and_keys(database_url: str) -> None:
    store = open_store(database_url)
    with store.write() as s:
        services.create_user(s, UserCreate(name="boss", role="admin"), ADMIN)
        services.create_user(s, UserCreate(name="mona", role="maintainer"), ADMIN)
        with pytest.raises(PermissionDenied, match="above your own"):
            services.create_user(s, UserCreate(name="x", role="admin"), MAINTAINER)
        with pytest.raises(InvalidInput, match="unknown role"):
            services.set_role(s, "mona", "root", ADMIN)
        with pytest.raises(Conflict):
            services.create_user(s, UserCreate(name="mona"), ADMIN)
        with pytest.raises(NotFound):
            services.set_role(s, "nobody", "viewer", ADMIN)
        new = services.create_key(s, KeyCreate(user="mona", name="ci", role="editor"), ADMIN)
    assert keys.looks_like_key(new.secret) and new.key.prefix == new.secret[:12]
    with store.read() as s:
        key_id, principal = services.principal_for_key(s, new.secret) or ("", None)
        assert principal is not None and (principal.name, principal.role) == ("mona", "editor")
        assert services.principal_for_key(s, "opsk_" + "x" * 43) is None
        assert [u.name for u in services.list_users(s)] == ["boss", "mona"]
    with store.write() as s:
        services.revoke_key(s, new.key.prefix, MAINTAINER)  # her own key, by its prefix
        services.revoke_key(s, key_id, MAINTAINER)  # again: no error
    with store.read() as s:
        assert services.principal_for_key(s, new.secret) is None
        assert services.principal_for_key_id(s, key_id) is None
    store.dispose()


def test_cached_keys_still_expire(sqlite_url: str) -> None:
    store = open_store(sqlite_url)
    with store.write() as s:
        services.create_user(s, UserCreate(name="boss", role="admin"), ADMIN)
        secret = services.create_key(s, KeyCreate(name="k", expires_in_s=60), ADMIN).secret
    authorizer = UserAuthorizer(store, ttl_s=60)
    found = authorizer.principal_for_key(secret)
    assert found is not None and authorizer.cached(secret) == found
    stale = found[1].__class__(**{**found[1].__dict__, "expires_at": 1})
    authorizer._remember(authorizer_slot(secret), found[0], stale)
    assert authorizer.cached(secret) is None  # past its expiry, cached or not
    store.dispose()


def test_a_key_in_use_is_looked_up_again_before_it_expires(sqlite_url: str) -> None:
    """The request that finds a resolution in its last quarter claims one background look-up
    (no request waits for it); a look-up that finds the key revoked drops it at once."""
    store = open_store(sqlite_url)
    with store.write() as s:
        services.create_user(s, UserCreate(name="boss", role="admin"), ADMIN)
        made = services.create_key(s, KeyCreate(name="k"), ADMIN)
    now = [100.0]
    authorizer = UserAuthorizer(store, ttl_s=2, clock=lambda: now[0])
    found = authorizer.principal_for_key(made.secret)
    assert found is not None and not authorizer.claim_refresh(made.secret)  # fresh
    now[0] += 1.6
    assert authorizer.cached(made.secret) == found  # still answers...
    assert authorizer.claim_refresh(made.secret)  # ...and is due: this caller looks it up
    assert not authorizer.claim_refresh(made.secret)  # one look-up at a time
    assert authorizer.principal_for_key(made.secret) == found
    assert not authorizer.claim_refresh(made.secret)  # fresh again
    now[0] += 1.6
    assert authorizer.claim_refresh(made.secret)
    with store.write() as s:
        services.revoke_key(s, made.key.id, ADMIN)  # from another process, say
    assert authorizer.principal_for_key(made.secret) is None
    assert authorizer.cached(made.secret) is None  # before its resolution's expiry
    store.dispose()


def authorizer_slot(secret: str) -> str:
    from opsloop.governance.authorizer import _digest

    return _digest("k", secret)


def test_current_user_is_the_principal_within_a_request_only() -> None:
    assert current_user() == os_user() and current_principal() is None

    def request() -> str:
        act_as(Principal(name="alice", role="editor", auth="users"))
        return current_user()

    assert contextvars.copy_context().run(request) == "alice"
    assert current_user() == os_user()  # nothing leaks out of the request's context
