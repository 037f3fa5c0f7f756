"""Helpers for every domain's CLI commands: how they print (tables, ``--json``, one-line
errors), how they parse options, and the client the application layer hands them."""
