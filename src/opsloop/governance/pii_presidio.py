"""Presidio's recognizers on a blank spaCy pipeline: no model download, no network call.

For the entities ``opsloop.governance.pii`` does not cover (Presidio knows ~40: URLs, crypto
wallets, national ids...) and as the reference the benchmark measures ours against. Two
things in Presidio's default set-up reach the network, and both are closed here:

- ``SpacyNlpEngine.load`` downloads the named spaCy model when it is not installed. A blank
  English pipeline (tokenizer only) written to a temporary folder is named by its path
  instead, which Presidio loads as is (it downloads only names that are neither an installed
  package nor an existing path). With no NER model, Presidio's ``SpacyRecognizer`` finds no
  PERSON, LOCATION or ORGANIZATION: only pattern and checksum recognizers run.
- Its e-mail recognizer asks ``tldextract``, whose default extractor fetches the public suffix
  list from publicsuffix.org on first use. The module's extractor is replaced with one that has
  no URLs and no cache folder, so it reads the snapshot bundled with tldextract.

presidio-analyzer and spaCy are the ``privacy`` extra and are imported here only, inside
functions, so ``import opsloop`` and the CLI never load them.
"""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from opsloop.errors import InvalidInput
from opsloop.governance.pii import ENTITIES
from opsloop.governance.pii import Finding

__all__ = ["PresidioDetector", "presidio_engine"]

_LOCK = threading.Lock()
_ENGINE: Any = None


def _offline_tldextract() -> None:
    import tldextract.tldextract as tld

    if tld.TLD_EXTRACTOR.suffix_list_urls:
        tld.TLD_EXTRACTOR = tld.TLDExtract(suffix_list_urls=(), cache_dir=None)


def presidio_engine() -> Any:
    """Presidio's default ``AnalyzerEngine`` (every predefined recognizer) on a blank English
    spaCy pipeline, built once per process (loading the registry takes about a second)."""
    global _ENGINE
    with _LOCK:
        if _ENGINE is not None:
            return _ENGINE
        try:
            import spacy
            from presidio_analyzer import AnalyzerEngine
            from presidio_analyzer.nlp_engine import NlpEngineProvider
        except ImportError as exc:
            raise InvalidInput(
                f"Presidio is not installed ({exc.name}): pip install 'opsloop[privacy]'"
            ) from None
        _offline_tldextract()
        with tempfile.TemporaryDirectory(prefix="opsloop-spacy-blank-") as folder:
            path = Path(folder) / "en_blank"
            spacy.blank("en").to_disk(path)
            provider = NlpEngineProvider(
                nlp_configuration={
                    "nlp_engine_name": "spacy",
                    "models": [{"lang_code": "en", "model_name": str(path)}],
                }
            )
            nlp_engine = provider.create_engine()  # loads the pipeline from the folder now
        _ENGINE = AnalyzerEngine(nlp_engine=nlp_engine, supported_languages=["en"])
        return _ENGINE


class PresidioDetector:
    """The interface of ``PiiDetector`` over Presidio's analyzer: ``find`` returns
    non-overlapping findings of the chosen entities (any of Presidio's, for None)."""

    def __init__(self, entities: Iterable[str] | None = None) -> None:
        self.engine = presidio_engine()
        known = set(self.engine.get_supported_entities(language="en"))
        chosen = [str(e).strip().upper() for e in entities] if entities is not None else None
        unknown = sorted(set(chosen or ()) - known)
        if unknown:
            raise InvalidInput(
                f"unknown Presidio entity {unknown[0]!r}; known: {', '.join(sorted(known))}"
            )
        self.entities = tuple(chosen) if chosen else tuple(sorted(known))
        self._ask = list(chosen) if chosen else None
        self.notes = [
            "Presidio on a blank spaCy pipeline has no NER model: PERSON, LOCATION, "
            "ORGANIZATION and NRP are never found"
        ]

    def find(self, text: str, *, column: str | None = None) -> list[Finding]:
        if not text:
            return []
        results = self.engine.analyze(text=text, language="en", entities=self._ask)
        kept: list[Finding] = []
        rank = {e: i for i, e in enumerate(ENTITIES)}
        ordered = sorted(results, key=lambda r: (-r.score, rank.get(r.entity_type, 99), r.start))
        for r in ordered:
            if all(r.end <= k.start or r.start >= k.end for k in kept):
                kept.append(Finding(r.entity_type, r.start, r.end, text[r.start : r.end]))
        return sorted(kept, key=lambda f: f.start)
