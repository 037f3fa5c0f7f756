"""Helpers for every domain's routers and pages: the store and auth dependencies, the error
handlers, and the web UI's shell (layout, templates, static files, search). Never imports a
domain: each hands its router and ``UiDomain`` to the application layer, which mounts them."""
