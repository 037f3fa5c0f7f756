"""API key secrets: how one is made, shown, and recognised.

A key is ``opsk_`` and 43 URL-safe characters (256 random bits from :mod:`secrets`). The store
keeps its SHA-256 and its first :data:`PREFIX_LENGTH` characters (what listings show, enough to
tell one key from another); the secret itself is returned once, by the call that creates it.

Why a fast hash and not bcrypt/argon2: those are slow on purpose so that a stolen table of
*passwords* (low entropy, guessable) costs years of guessing. A 256-bit random key cannot be
guessed at any speed, so slowness buys nothing there, while the server must hash the presented
key on every request (bcrypt costs ~100 ms each time, SHA-256 about a microsecond). A plain
SHA-256 also makes the lookup an indexed equality on the hash: no per-row comparison, and no
timing that depends on how much of a guess matched.
"""

from __future__ import annotations

import hashlib
import secrets

__all__ = ["KEY_PREFIX", "PREFIX_LENGTH", "hash_key", "looks_like_key", "new_key"]

KEY_PREFIX = "opsk_"
PREFIX_LENGTH = 12  # "opsk_" and 7 characters of the secret
_KEY_LENGTH = len(KEY_PREFIX) + 43


def new_key() -> str:
    """A fresh key secret."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(secret: str) -> str:
    """What the store keeps of ``secret``: its SHA-256, hex."""
    return hashlib.sha256(secret.encode()).hexdigest()


def looks_like_key(secret: str) -> bool:
    """Whether ``secret`` has a key's shape (anything else is refused before any lookup)."""
    return len(secret) == _KEY_LENGTH and secret.startswith(KEY_PREFIX)
