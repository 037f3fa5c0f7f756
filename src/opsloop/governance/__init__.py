"""Governance: who may do what on a shared server (users, service accounts, API keys, roles)."""
