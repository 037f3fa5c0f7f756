"""Applying a masking setting to values as they arrive, and the cached setting ingest reads.

:class:`Masker` replaces the PII the recognizers of :mod:`opsloop.governance.pii` find in a
text (the same recognizers behind the same gates a ``data scan --pii`` uses: a text with
nothing PII-like costs a few scans) and walks JSON-shaped values (dicts, lists), touching only
strings; a value with nothing to mask comes back as the very same object, so the common case
allocates nothing. A dict key names the values under it, so ``{"phone": "5552345678"}`` is a
phone number where the same digits in prose would need a phone word near them.

:class:`IngestMasking` is what an ingest path holds: the workspace's setting, read at most
every :data:`CACHE_TTL_S` seconds (a span batch costs a clock read, not a query), and at once
after a change made in this process (:func:`opsloop.governance.masking.changed`). When the
database cannot be read, the setting last read stays in force; when none was ever read, every
entity is masked with placeholders: a batch spooled to disk while the database is away must
not hold what the setting, unknown, might forbid.
"""

from __future__ import annotations

import functools
import hmac
import threading
import time
from typing import Any

from opsloop.errors import OpsloopError
from opsloop.governance import masking
from opsloop.governance.pii import ENTITIES
from opsloop.governance.pii import PiiDetector
from opsloop.governance.roles import DEFAULT_WORKSPACE

__all__ = ["CACHE_TTL_S", "IngestMasking", "Masker"]

CACHE_TTL_S = 5.0
_HASH_HEX = 16  # 64 bits of HMAC-SHA256: enough to join on, short enough to read
_CACHED, _CACHED_CHARS = 1024, 8192  # texts remembered per masker: at most 8 MiB of them


def _normal(entity: str, value: str) -> str:
    """The form hashed, so one e-mail or number written two ways hashes the same."""
    if entity in ("EMAIL_ADDRESS", "IP_ADDRESS"):
        return value.strip().lower()
    if entity == "PERSON":
        return " ".join(value.split()).casefold()
    return "".join(ch for ch in value if ch.isalnum()).upper()  # cards, phones, IBANs, SSNs


class Masker:
    """Masks ``entities`` in texts: ``placeholder`` (``<EMAIL_ADDRESS>``) or ``hash``
    (``<EMAIL_ADDRESS_3f9a1c2b7d4e5f60>``, HMAC-SHA256 under ``key``). Thread-safe.

    A placeholder joins its entity name and the hash with ``_``, a word character, so no
    recognizer finds PII inside one (each wants a non-word character before a number):
    masking a masked text changes nothing.

    Example:
        >>> Masker(["EMAIL"]).text("write to ann@example.com")
        'write to <EMAIL_ADDRESS>'
    """

    def __init__(self, entities: Any, mode: str = "placeholder", key: str | None = None) -> None:
        if mode not in masking.MODES:
            raise ValueError(f"mode {mode!r} is not one of {masking.MODES}")
        if mode == "hash" and not key:
            raise ValueError("hash mode needs a key")
        self.detector = PiiDetector(entities)
        self._cached = functools.lru_cache(maxsize=_CACHED)(self._text)
        self.mode = mode
        self._key = key.encode() if key else b""

    def placeholder(self, entity: str, value: str) -> str:
        if self.mode == "placeholder":
            return f"<{entity}>"
        digest = hmac.digest(self._key, _normal(entity, value).encode(), "sha256")
        return f"<{entity}_{digest.hex()[:_HASH_HEX]}>"

    def text(self, value: str, column: str | None = None) -> str:
        """``value`` with every finding replaced (the same object when there is none).

        Texts up to :data:`_CACHED_CHARS` long are remembered (the last :data:`_CACHED`):
        a system prompt, or a root span's input that its first LLM call repeats, is scanned
        once, not once per span."""
        if len(value) <= _CACHED_CHARS:
            return self._cached(value, column)
        return self._text(value, column)

    def _text(self, value: str, column: str | None) -> str:
        found = self.detector.find(value, column=column)  # its gates skip what cannot match
        if not found:
            return value
        parts, at = [], 0
        for f in found:
            parts += [value[at : f.start], self.placeholder(f.entity, f.text)]
            at = f.end
        parts.append(value[at:])
        return "".join(parts)

    def value(self, value: Any, column: str | None = None) -> Any:
        """``value`` with its strings masked, containers copied only where something
        changed; numbers, booleans and None pass as they are."""
        if isinstance(value, str):
            return self.text(value, column) if value else value
        if isinstance(value, dict):
            out: dict[Any, Any] | None = None
            for k, v in value.items():
                masked = self.value(v, k if isinstance(k, str) else column)
                if masked is not v:
                    if out is None:
                        out = dict(value)
                    out[k] = masked
            return value if out is None else out
        if isinstance(value, list | tuple):
            items: list[Any] | None = None
            for i, v in enumerate(value):
                masked = self.value(v, column)
                if masked is not v:
                    if items is None:
                        items = list(value)
                    items[i] = masked
            return value if items is None else items
        return value


class IngestMasking:
    """A workspace's masking per stream, as ingest reads it (see the module docstring).

    Thread-safe. ``store`` is the metadata store the setting is in.
    """

    def __init__(
        self, store: Any, *, ttl_s: float = CACHE_TTL_S, workspace: str = DEFAULT_WORKSPACE
    ) -> None:
        self.store = store
        self.ttl_s = ttl_s
        self.workspace = workspace
        self._maskers: dict[str, Masker] | None = None
        self._expires = float("-inf")
        self._seen = -1
        self._lock = threading.Lock()

    def masker(self, stream: str) -> Masker | None:
        """The masker of ``stream`` (``traces``, ``predictions``), or None when it is off."""
        if time.monotonic() >= self._expires or masking.generation() != self._seen:
            self._refresh()
        maskers = self._maskers
        return maskers.get(stream) if maskers is not None else None

    def _refresh(self) -> None:
        with self._lock:
            seen = masking.generation()
            if time.monotonic() < self._expires and seen == self._seen:
                return  # another thread read it meanwhile
            try:
                with self.store.read() as session:
                    rules = masking.masking_rules(session, self.workspace)
            except OpsloopError:  # the database is away: keep what was read, or mask it all
                if self._maskers is None:
                    fallback = Masker(ENTITIES)
                    self._maskers = dict.fromkeys(masking.STREAMS, fallback)
                    self._expires = float("-inf")  # try again on the next batch
                else:
                    self._expires = time.monotonic() + self.ttl_s
                return
            self._maskers = {
                stream: Masker(rule.entities, rule.mode, rule.key) for stream, rule in rules.items()
            }
            self._expires, self._seen = time.monotonic() + self.ttl_s, seen
