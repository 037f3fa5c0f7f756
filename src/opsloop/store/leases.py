"""Leases: which one of several processes on one store does a job that must run once.

A lease is one row ``(name, holder, epoch, expires_at_ms, ticks)``. Every write is one
compare-and-set statement, so two holders can never both hold a lease, on SQLite (one file,
several processes of one machine) and on PostgreSQL (several machines) alike, and no connection
is held between writes (an advisory lock would pin one per process for as long as it leads):

- :func:`acquire_or_renew` is one conditional ``UPDATE … WHERE name = :name AND (holder = :me OR
  expires_at_ms < now)`` and, when no row exists yet, one ``INSERT … ON CONFLICT DO NOTHING``.
  Taking the lease from another holder adds one to ``epoch``; renewing it keeps the epoch.
- :func:`claim_tick` numbers one tick of the job: ``ticks + 1``, only while the lease is still
  this holder's, at this epoch, and unexpired. The ``(epoch, tick)`` pair is a fencing token.

Time is the database's clock (``clock_timestamp()`` on PostgreSQL; on SQLite ``julianday('now')``,
which is the clock of the one machine every process shares), so holders on hosts whose clocks
disagree still agree on when a lease expires.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import BigInteger
from sqlalchemy import String
from sqlalchemy import case
from sqlalchemy import literal_column
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import Session
from sqlalchemy.orm import mapped_column
from sqlalchemy.sql.expression import ColumnClause

from opsloop.errors import InvalidInput
from opsloop.store.base import Base
from opsloop.store.database import Store
from opsloop.store.database import dialect_insert

__all__ = ["Lease", "LeaseRow", "acquire_or_renew", "claim_tick", "read_lease", "release"]


class LeaseRow(Base):
    """One lease: who holds it, since which hand-over (``epoch``), until when, how many ticks."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    holder: Mapped[str] = mapped_column(String(250))
    epoch: Mapped[int] = mapped_column(BigInteger)  # +1 each time another holder takes it
    expires_at_ms: Mapped[int] = mapped_column(BigInteger)  # the database's clock
    ticks: Mapped[int] = mapped_column(BigInteger)  # the last tick claimed, over all epochs


LEASES = LeaseRow.__table__


@dataclass(frozen=True)
class Lease:
    """A lease as one holder saw it: ``leads`` is whether that holder holds it now."""

    name: str
    holder: str
    epoch: int
    expires_at_ms: int
    leads: bool


def _now_ms(session: Session) -> ColumnClause[Any]:
    """The database's clock in ms since the epoch, as an SQL expression."""
    if session.get_bind().dialect.name == "postgresql":
        return literal_column("CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)")
    return literal_column("CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)")


def _check(name: str, holder: str, ttl_s: float) -> None:
    if not name or len(name) > 100:
        raise InvalidInput(f"a lease name has 1 to 100 characters, not {len(name)}")
    if not holder or len(holder) > 250:
        raise InvalidInput(f"a lease holder has 1 to 250 characters, not {len(holder)}")
    if not 0 < ttl_s <= 3600:
        raise InvalidInput(f"a lease lasts more than 0 and at most 3600 s, not {ttl_s:g}")


def acquire_or_renew(store: Store, name: str, holder: str, ttl_s: float) -> Lease:
    """Take the lease ``name`` for ``holder`` if it is free or expired, or renew it if
    ``holder`` holds it; either way it then lasts ``ttl_s`` from now (the database's clock).

    Returns:
        The lease: ``leads`` tells whether ``holder`` holds it; otherwise who does.

    Raises:
        InvalidInput: An empty or too long name or holder, or a ``ttl_s`` out of (0, 3600].
        StoreError: The database did not answer (the caller does not lead).
    """
    _check(name, holder, ttl_s)
    ttl_ms = int(ttl_s * 1000)
    with store.write() as session:
        now = _now_ms(session)
        columns = (LEASES.c.epoch, LEASES.c.expires_at_ms)
        won = session.execute(
            update(LEASES)
            .where(LEASES.c.name == name,
                   or_(LEASES.c.holder == holder, LEASES.c.expires_at_ms < now))
            .values(epoch=case((LEASES.c.holder == holder, LEASES.c.epoch),
                               else_=LEASES.c.epoch + 1),
                    holder=holder, expires_at_ms=now + ttl_ms)
            .returning(*columns)
        ).first()  # fmt: skip
        if won is None:
            won = session.execute(
                dialect_insert(session, LEASES)
                .values(name=name, holder=holder, epoch=1, expires_at_ms=now + ttl_ms, ticks=0)
                .on_conflict_do_nothing(index_elements=["name"])
                .returning(*columns)
            ).first()
        if won is not None:
            return Lease(name, holder, won.epoch, won.expires_at_ms, leads=True)
        row = session.execute(select(LEASES).where(LEASES.c.name == name)).one()
        return Lease(name, row.holder, row.epoch, row.expires_at_ms, leads=False)


def claim_tick(store: Store, name: str, holder: str, epoch: int) -> int | None:
    """The next tick's number if ``holder`` still holds ``name`` at ``epoch`` (unexpired, by
    the database's clock), else None: a holder deposed while it slept cannot claim a tick."""
    with store.write() as session:
        now = _now_ms(session)
        return session.execute(
            update(LEASES)
            .where(LEASES.c.name == name, LEASES.c.holder == holder, LEASES.c.epoch == epoch,
                   LEASES.c.expires_at_ms >= now)
            .values(ticks=LEASES.c.ticks + 1)
            .returning(LEASES.c.ticks)
        ).scalar()  # fmt: skip


def release(store: Store, name: str, holder: str, epoch: int) -> bool:
    """Let the lease go now (a clean stop), so that another holder need not wait for it to
    expire; whether ``holder`` still held it."""
    with store.write() as session:
        return bool(
            session.execute(
                update(LEASES)
                .where(LEASES.c.name == name, LEASES.c.holder == holder, LEASES.c.epoch == epoch)
                .values(expires_at_ms=0)
            ).rowcount
        )


def read_lease(store: Store, name: str) -> LeaseRow | None:
    """The lease's row as stored (None before anyone asked for it)."""
    with store.read() as session:
        return session.get(LeaseRow, name)
