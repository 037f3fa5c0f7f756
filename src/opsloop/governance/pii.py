"""Finding personal data (PII) in text: our own recognizers, standard library only.

Why our own and not Presidio's ``AnalyzerEngine`` for the default path: Presidio runs a spaCy
pipeline over every text and then ~40 recognizers, its phone recognizer runs libphonenumber's
matcher once per region (8 passes), and its e-mail check asks tldextract, which fetches the
public suffix list over the network on first use. Scanning a dataset means millions of short
cells (and ingest masks every span's prompt), so each recognizer here is one compiled regex
behind a gate that decides in a microsecond or two whether it can match at all (see
:mod:`.pii_patterns`: a prompt with dates and order ids in it runs none of the number
recognizers), and a match counts only when its checksum or structure holds: Luhn for cards,
ISO 7064 mod-97 plus the country's length for IBANs, the SSA's never-issued ranges for SSNs,
``ipaddress`` for IPs, NANP area and exchange digits for phones.
``opsloop.governance.pii_presidio`` runs Presidio itself (on a blank spaCy pipeline) when its
wider set of entities is wanted.

PERSON: with no NER model (a model download is ruled out), names are found only where the
text says a name follows: an honorific or salutation (``Mr.``, ``Dr.``, ``Dear``), ``my name
is``, ``signed by``..., or a column whose name says it holds names (``name``,
``customer_name``...) whose value is name-shaped. A name token is letters only, so a number is
never a person (the false positive Presidio's spaCy models are known for). Names in free prose
without such a cue are not found: recall for PERSON is partial, and the scan says so.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from opsloop.errors import InvalidInput
from opsloop.governance.pii_patterns import CARD
from opsloop.governance.pii_patterns import DIGIT
from opsloop.governance.pii_patterns import EMAIL_DOMAIN
from opsloop.governance.pii_patterns import EMAIL_LOCAL
from opsloop.governance.pii_patterns import GATE_CARD
from opsloop.governance.pii_patterns import GATE_HONORIFIC
from opsloop.governance.pii_patterns import GATE_IBAN
from opsloop.governance.pii_patterns import GATE_IPV4
from opsloop.governance.pii_patterns import GATE_IPV6
from opsloop.governance.pii_patterns import GATE_NANP
from opsloop.governance.pii_patterns import GATE_SSN
from opsloop.governance.pii_patterns import GATE_SSN_SP
from opsloop.governance.pii_patterns import GATE_TITLED
from opsloop.governance.pii_patterns import GATE_UK
from opsloop.governance.pii_patterns import IBAN
from opsloop.governance.pii_patterns import IBAN_LENGTHS
from opsloop.governance.pii_patterns import IPV4
from opsloop.governance.pii_patterns import IPV6
from opsloop.governance.pii_patterns import NAME_COLUMN
from opsloop.governance.pii_patterns import NOT_NAMES
from opsloop.governance.pii_patterns import OTHER_DIGIT
from opsloop.governance.pii_patterns import PERSON_CUED
from opsloop.governance.pii_patterns import PERSON_VALUE
from opsloop.governance.pii_patterns import PHONE_COLUMN
from opsloop.governance.pii_patterns import PHONE_CONTEXT
from opsloop.governance.pii_patterns import PHONE_INTL
from opsloop.governance.pii_patterns import PHONE_NANP
from opsloop.governance.pii_patterns import PHONE_UK
from opsloop.governance.pii_patterns import SHAPE
from opsloop.governance.pii_patterns import SSN
from opsloop.governance.pii_patterns import card_shaped
from opsloop.governance.pii_patterns import iban_valid
from opsloop.governance.pii_patterns import luhn_valid

__all__ = [
    "ENTITIES",
    "Finding",
    "PiiDetector",
    "check_entities",
    "iban_valid",
    "is_name_column",
    "luhn_valid",
    "mask",
]

# In the order overlaps are settled: a span claimed by an earlier entity is not re-reported.
ENTITIES = (
    "IBAN_CODE",
    "CREDIT_CARD",
    "US_SSN",
    "EMAIL_ADDRESS",
    "IP_ADDRESS",
    "PHONE_NUMBER",
    "PERSON",
)
_ALIASES = {
    "EMAIL": "EMAIL_ADDRESS",
    "PHONE": "PHONE_NUMBER",
    "IBAN": "IBAN_CODE",
    "IP": "IP_ADDRESS",
    "SSN": "US_SSN",
    "CARD": "CREDIT_CARD",
    "NAME": "PERSON",
}


@dataclass(frozen=True, slots=True)
class Finding:
    entity: str
    start: int
    end: int
    text: str


def check_entities(names: Iterable[str] | None) -> tuple[str, ...]:
    """Entity names in their canonical spelling (``email`` → ``EMAIL_ADDRESS``); all of them
    for None; ``InvalidInput`` naming the known ones for anything else."""
    if names is None:
        return ENTITIES
    if isinstance(names, str):
        names = [names]
    out: list[str] = []
    for raw in names:
        name = str(raw).strip().upper()
        name = _ALIASES.get(name, name)
        if name not in ENTITIES:
            raise InvalidInput(
                f"unknown PII entity {raw!r}; known: {', '.join(ENTITIES)} "
                f"(or {', '.join(sorted(_ALIASES))})"
            )
        if name not in out:
            out.append(name)
    if not out:
        raise InvalidInput(f"name at least one PII entity: {', '.join(ENTITIES)}")
    return tuple(out)


PERSON_NOTE = (
    "PERSON is found only after a cue (Mr., Dr., Dear, 'my name is', 'signed by') or as the "
    "whole value of a column named like a name column; names elsewhere in prose are missed"
)


@lru_cache(maxsize=1024)
def is_phone_column(column: str | None) -> bool:
    """A column whose name says it holds phone numbers (``phone``, ``mobile``, ``tel``)."""
    return bool(column and PHONE_COLUMN.search(column))


@lru_cache(maxsize=1024)
def is_name_column(column: str | None) -> bool:
    """A column whose name says it holds people's names (``name``, ``customer_name``)."""
    return bool(
        column
        and column.lower() not in ("filename", "hostname", "username")
        and NAME_COLUMN.search(column)
    )


class PiiDetector:
    """Finds the chosen entities in a text; ``find`` returns non-overlapping findings."""

    def __init__(self, entities: Iterable[str] | None = None) -> None:
        self.entities = check_entities(entities)
        self._wanted = frozenset(self.entities)
        self.notes = [PERSON_NOTE] if "PERSON" in self._wanted else []

    def find(self, text: str, *, column: str | None = None) -> list[Finding]:
        """Every entity in ``text``; ``column`` (the column it came from) lets a name-shaped
        value of a name column count as a PERSON."""
        if not text:
            return []
        if text.isascii():  # the shape the gates read (see pii_patterns)
            shape: str | None = text.encode("ascii").translate(SHAPE).decode("ascii")
        elif OTHER_DIGIT.search(text) is None:  # and "?" for each other character:
            shape = text.encode("ascii", "replace").translate(SHAPE).decode("ascii")
        else:
            shape = None  # a digit of another script
        return self.find_gated(text, column, shape)

    def find_gated(self, text: str, column: str | None, shape: str | None) -> list[Finding]:
        """``find`` with the gates reading ``shape``; None runs every recognizer, as a text
        with another script's digits does (and the equivalence test, to compare)."""
        wanted = self._wanted
        found: list[Finding] = []
        has_digit = DIGIT.search(text) is not None if shape is None else "0" in shape
        if has_digit:
            # three digits in a row: every card, SSN, NANP and UK phone number has them
            run = shape is None or "000" in shape
            if "IBAN_CODE" in wanted and (shape is None or GATE_IBAN in shape):
                found += _cut_findings(IBAN, text, "IBAN_CODE", _iban_end)
            if "CREDIT_CARD" in wanted and run and (shape is None or GATE_CARD.search(shape)):
                found += _cut_findings(CARD, text, "CREDIT_CARD", _card_end)
            if (
                "US_SSN" in wanted
                and run
                and (shape is None or GATE_SSN in shape or GATE_SSN_SP in shape)
            ):
                found += _ssns(text)
        if "EMAIL_ADDRESS" in wanted and "@" in text:
            found += _emails(text)
        if has_digit:
            if "IP_ADDRESS" in wanted:
                ipv4 = shape is None or GATE_IPV4.search(shape) is not None
                found += _ips(text, ipv4, shape is None or GATE_IPV6.search(text) is not None)
            if "PHONE_NUMBER" in wanted:
                nanp = run and (shape is None or GATE_NANP.search(shape) is not None)
                uk = run and (shape is None or GATE_UK.search(shape) is not None)
                found += _phones(text, is_phone_column(column), nanp, uk)
        if "PERSON" in wanted:
            found += _persons(text, is_name_column(column), shape is None or _cued(text, shape))
        return _settle(found) if len(found) > 1 else found


def _settle(found: list[Finding]) -> list[Finding]:
    """Drop findings overlapping one of an entity earlier in ``ENTITIES`` (or found first)."""
    rank = {e: i for i, e in enumerate(ENTITIES)}
    kept: list[Finding] = []
    for f in sorted(found, key=lambda f: (rank[f.entity], f.start)):
        if all(f.end <= k.start or f.start >= k.end for k in kept):
            kept.append(f)
    return sorted(kept, key=lambda f: f.start)


def _emails(text: str) -> list[Finding]:
    out = []
    at = text.find("@")
    while at != -1:
        local = EMAIL_LOCAL.search(text, max(0, at - 64), at)
        domain = EMAIL_DOMAIN.match(text, at + 1)
        if local and domain:
            out.append(
                Finding(
                    "EMAIL_ADDRESS", local.start(), domain.end(), text[local.start() : domain.end()]
                )
            )
        at = text.find("@", at + 1)
    return out


def _cut_findings(
    pattern: re.Pattern[str], text: str, entity: str, valid_end: Callable[[str], int | None]
) -> list[Finding]:
    """``entity`` at each match of ``pattern``, cut to the prefix ``valid_end`` accepts (None:
    none is valid). A match may run on into the next number, so the scan resumes right after
    what was taken."""
    out = []
    m = pattern.search(text)
    while m:
        span, resume = m.group(), m.end()
        end = valid_end(span)
        if end is not None:
            out.append(Finding(entity, m.start(), m.start() + end, span[:end]))
            resume = m.start() + end
        m = pattern.search(text, resume)
    return out


def _card_end(span: str) -> int | None:
    while True:  # a trailing group of another number may have been taken: drop it and retry
        digits = span.replace(" ", "").replace("-", "")
        if card_shaped(digits) and luhn_valid(digits):
            return len(span)
        cut = max(span.rfind(" "), span.rfind("-"))
        if cut <= 0:
            return None
        span = span[:cut]


def _iban_end(span: str) -> int | None:
    length = IBAN_LENGTHS.get(span[:2])
    if length is None:
        return None
    end, count = 0, 0  # the span's first ``length`` letters and digits (it may run on)
    for end, ch in enumerate(span, 1):  # noqa: B007
        count += ch != " "
        if count == length:
            break
    return end if iban_valid(span[:end].replace(" ", "")) else None


def _ssns(text: str) -> list[Finding]:
    out = []
    for m in SSN.finditer(text):
        area, group, serial = m.group()[:3], m.group()[4:6], m.group()[7:]
        if area in ("000", "666") or area[0] == "9" or group == "00" or serial == "0000":
            continue  # never issued
        out.append(Finding("US_SSN", m.start(), m.end(), m.group()))
    return out


def _ips(text: str, ipv4: bool, ipv6: bool) -> list[Finding]:
    """``ipv4``, ``ipv6``: those gates hold."""
    out = []
    if ipv4:
        out = [
            Finding("IP_ADDRESS", m.start(), m.end(), m.group())
            for m in IPV4.finditer(text)
            if all(len(o) == 1 or (o[0] != "0" and int(o) <= 255) for o in m.group().split("."))
        ]
    if ipv6:
        for m in IPV6.finditer(text):
            try:
                ipaddress.IPv6Address(m.group())
            except ValueError:
                continue
            out.append(Finding("IP_ADDRESS", m.start(), m.end(), m.group()))
    return out


def _phones(text: str, phone_column: bool, nanp: bool, uk: bool) -> list[Finding]:
    """A bare run of digits (``5552345678``) is as likely an order or account number: it
    counts only in a phone column or after a phone word (``call``, ``tel``, ``mobile``...)
    in the same sentence, at most 30 characters before it. ``nanp``, ``uk``: those gates
    hold (international numbers start with ``+``)."""

    def plausible(m: re.Match[str]) -> bool:
        if phone_column or not m.group().isdigit():
            return True
        start = max(0, m.start() - 30)
        start = max(start, text.rfind(". ", start, m.start()) + 1)
        return PHONE_CONTEXT.search(text, start, m.start()) is not None

    out = []
    if nanp:
        out = [
            Finding("PHONE_NUMBER", m.start(), m.end(), m.group())
            for m in PHONE_NANP.finditer(text)
            if plausible(m)
        ]
    if "+" in text:
        for m in PHONE_INTL.finditer(text):
            digits = sum(ch.isdigit() for ch in m.group())
            if 8 <= digits <= 15:
                out.append(Finding("PHONE_NUMBER", m.start(), m.end(), m.group()))
    if uk and "0" in text:
        for m in PHONE_UK.finditer(text):
            if 10 <= sum(ch.isdigit() for ch in m.group()) <= 11 and plausible(m):
                out.append(Finding("PHONE_NUMBER", m.start(), m.end(), m.group()))
    return out


def _cued(text: str, shape: str) -> bool:
    """The gate of cued names: a cue that a capital follows, by its shape first (a capitalised
    word, a space, a capital), then by its words; the phrase cues by their tails, as both
    spellings end (``[Mm]y name is``)."""
    return bool(
        (GATE_TITLED.search(shape) and GATE_HONORIFIC.search(text))
        or "y name is " in text
        or "igned " in text  # [Ss]igned by, [Aa]ssigned to
        or "ritten by " in text
        or (": " in text and ("ame: " in text or "rom: " in text))
    )


def _persons(text: str, name_column: bool, cued: bool) -> list[Finding]:
    """``cued``: the gate of cued names holds."""
    if name_column:
        m = PERSON_VALUE.fullmatch(text.strip())
        if m and m.group(1).split(" ")[0] not in ("Unknown", "None", "Null", "Test", "Anonymous"):
            offset = text.index(m.group(1))
            return [Finding("PERSON", offset, offset + len(m.group(1)), m.group(1))]
    if not cued:
        return []
    out = []
    for m in PERSON_CUED.finditer(text):
        name = m.group(1)
        if name.split(" ")[0] in NOT_NAMES:
            continue
        out.append(Finding("PERSON", m.start(1), m.end(1), name))
    return out


# -- masking -----------------------------------------------------------------------------------
def mask(value: str, entity: str) -> str:
    """A value as a report may show it: enough to recognise the kind, never the value itself
    (``j***@e***.com``, ``****-****-****-**11``, ``J*** S***``, ``DE**…**00``)."""
    if entity == "EMAIL_ADDRESS" and "@" in value:
        local, _, domain = value.partition("@")
        host, dot, tld = domain.rpartition(".")
        return f"{local[:1]}***@{host[:1]}***{dot}{tld}"
    if entity == "PERSON":
        return " ".join(f"{word[:1]}***" for word in value.split())
    if entity == "IP_ADDRESS":
        sep = ":" if ":" in value else "."
        return value.split(sep)[0] + sep + "***"
    if entity == "IBAN_CODE":
        compact = value.replace(" ", "")
        return f"{compact[:2]}**…**{compact[-2:]}"
    # numbers: every digit but the last two starred, separators kept
    digits = sum(ch.isdigit() for ch in value)
    seen = 0
    out = []
    for ch in value:
        if ch.isdigit():
            seen += 1
            out.append(ch if seen > digits - 2 else "*")
        else:
            out.append(ch)
    return "".join(out)
