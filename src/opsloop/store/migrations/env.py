"""Alembic environment: runs on the connection (and transaction) opsloop hands it."""

from alembic import context

from opsloop.store.base import import_all_tables

target_metadata = import_all_tables()
connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=target_metadata,
    render_as_batch=True,  # SQLite can only ALTER through table copies
    transactional_ddl=True,
    compare_type=True,
)
context.run_migrations()
