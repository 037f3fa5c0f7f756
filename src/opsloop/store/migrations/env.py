"""Alembic environment: runs on the connection (and transaction) opsloop hands it."""

from alembic import context

# The full schema's metadata when the caller hands it (``alembic revision --autogenerate``
# through ``opsloop.schema``); upgrades and downgrades run the revisions and need none.
target_metadata = context.config.attributes.get("metadata")
connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=target_metadata,
    render_as_batch=True,  # SQLite can only ALTER through table copies
    transactional_ddl=True,
    compare_type=True,
)
context.run_migrations()
