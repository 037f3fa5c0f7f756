"""Finding personal data (PII) in text: our own recognizers, standard library only.

Why our own and not Presidio's ``AnalyzerEngine`` for the default path: Presidio runs a spaCy
pipeline over every text and then ~40 recognizers, its phone recognizer runs libphonenumber's
matcher once per region (8 passes), and its e-mail check asks tldextract, which fetches the
public suffix list over the network on first use. Scanning a dataset means millions of short
cells, so each recognizer here is one compiled regex behind a cheap pre-filter (no ``@`` in
the text: no e-mail; no digit: no number), and a match counts only when its checksum or
structure holds: Luhn for cards, ISO 7064 mod-97 plus the country's length for IBANs, the SSA's
never-issued ranges for SSNs, ``ipaddress`` for IPs, NANP area and exchange digits for phones.
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
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from opsloop.errors import InvalidInput

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


# -- checksums ---------------------------------------------------------------------------------
def luhn_valid(digits: str) -> bool:
    """The Luhn (mod 10) check every payment card number carries."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


# ISO 13616 lengths per country (the registry's common members).
_IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22,
    "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28,
    "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23,
    "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26,
    "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20,
    "LV": 21, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MR": 27, "MT": 31, "MU": 30, "NL": 18,
    "NO": 15, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "SA": 24,
    "SC": 31, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "ST": 25, "SV": 28, "TL": 23, "TN": 24,
    "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
}  # fmt: skip


def iban_valid(compact: str) -> bool:
    """An IBAN without spaces: known country, its length, and mod-97 == 1 (ISO 7064)."""
    if _IBAN_LENGTHS.get(compact[:2]) != len(compact):
        return False
    moved = compact[4:] + compact[:4]
    number = "".join(str(int(ch, 36)) for ch in moved)
    return int(number) % 97 == 1


# -- patterns ----------------------------------------------------------------------------------
_EMAIL_LOCAL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}$")
_EMAIL_DOMAIN = re.compile(r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}\b")
# Each pattern starts with a character class and checks what precedes it with a lookbehind
# after it: ``re`` then skips ahead to candidate characters instead of trying every position
# (an IPv4 scan is 4x faster written this way).
_CARD = re.compile(r"(?:[2-6]\d{3}|1800)(?<![\w.-]....)(?:[ -]?\d){8,15}(?![\d])")
# Issuer prefixes of the shorter card lengths (a 13-15 digit number is a card only with one):
# Visa 13; Diners 14; Amex and JCB 15; Maestro 12-19. Lengths 16-19 take any 2-6 start.
_SHORT_PREFIXES = {13: ("4",), 14: ("30", "36", "38", "39"), 15: ("34", "37", "1800", "2131")}
_MAESTRO = (
    "5018",
    "5020",
    "5038",
    "56",
    "57",
    "58",
    "6304",
    "6390",
    "6759",
    "6761",
    "6762",
    "6763",
)
_IBAN = re.compile(r"[A-Z](?<![A-Z0-9].)[A-Z]\d{2}(?: ?[A-Z0-9]){11,30}")
_SSN = re.compile(r"\d(?<![\d-].)\d\d([- ])\d\d\1\d{4}(?![\d-])")
_IPV4 = re.compile(r"\d(?<![\d.].)\d{0,2}(?:\.\d{1,3}){3}(?!\.?\d)")  # octets <= 255 checked after
_IPV6 = re.compile(r"(?<![0-9A-Fa-f:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![0-9A-Fa-f:])")
_PHONE_NANP = re.compile(
    r"(?<![\w+])(?:(?:\+1|001|1)[-. ]?)?(?:\([2-9]\d\d\) ?|[2-9]\d\d[-. ]?)[2-9]\d\d[-. ]?\d{4}"
    r"(?: ?(?:x|ext\.?) ?\d{1,6})?(?!\w)"
)
_PHONE_INTL = re.compile(r"\+[1-9]\d{0,2}(?:\(0\))?[ .-]?(?:\(?\d{1,5}\)?[ .-]?){1,5}\d{2,5}(?!\w)")
_PHONE_UK = re.compile(r"(?<![\w+])(?:\(0\d{2,4}\) ?|0\d{2,4} ?)(?:\d{3,4} ?\d{3,4}|\d{6,8})(?!\w)")
_HONORIFIC = (
    r"(?:Mr|Mrs|Ms|Mx|Miss|Dr|Prof|Sir|Dame|Mister|Madam|Dear|Hi|Hello|Hey|Thanks|Regards|"
    r"Sincerely|Attn|Patient|Customer|Client|Employee|Contact)"
)
_NAME = r"(?:[A-Z]'|[A-Z][a-z]{1,2})?[A-Z][a-z]+(?:[-'][A-Z]?[a-z]+)?"  # Ann, McKay, O'Neil
_FULL_NAME = rf"{_NAME}(?: (?:[A-Z]\. )?{_NAME}){{0,2}}"
_PERSON_CUED = re.compile(
    rf"(?:\b{_HONORIFIC}\.?,?:? |\b(?:[Mm]y name is|[Nn]ame:|[Ss]igned by|[Aa]ssigned to|"
    rf"[Ww]ritten by|[Ff]rom:) )(?:(?:Mr|Mrs|Ms|Dr|Prof)\.? )?({_FULL_NAME})"
)
_PERSON_VALUE = re.compile(
    rf"(?:(?:Mr|Mrs|Ms|Dr|Prof)\.? )?({_FULL_NAME})(?: [JS]r\.?| I{{1,3}}| MD| PhD| DDS| DVM)?"
)
_NOT_NAME_WORDS = (
    "Team All Everyone Customer Customers Sir Madam There World Support Friend Friends Thanks "
    "The This That A An Our Your My Monday Tuesday Wednesday Thursday Friday Saturday Sunday "
    "January February March April May June July August September October November December "
    "Mr Mrs Ms Mx Miss Dr Prof Sir Dame Mister"
)
_NOT_NAMES = frozenset(_NOT_NAME_WORDS.split())
_NAME_COLUMN = re.compile(
    r"(?:^|[_\W])(?:full_?|first_?|last_?|given_?|family_?|sur|user_?|customer_?|contact_?|"
    r"patient_?|employee_?|author_?)?name(?:s)?(?:$|[_\W])|^(?:author|customer|contact|"
    r"patient|person|employee|owner|assignee|reporter)$",
    re.IGNORECASE,
)
_DIGIT = re.compile(r"\d")
_PHONE_CONTEXT = re.compile(
    r"(?i)\b(?:phone|tel|telephone|mobile|cell|fax|call|sms|text|whatsapp|ph|dial|contact)"
)
_PHONE_COLUMN = re.compile(r"(?i)phone|(?:^|_)(?:tel|mobile|cell|fax|msisdn)(?:$|_)")
PERSON_NOTE = (
    "PERSON is found only after a cue (Mr., Dr., Dear, 'my name is', 'signed by') or as the "
    "whole value of a column named like a name column; names elsewhere in prose are missed"
)


@lru_cache(maxsize=1024)
def is_phone_column(column: str | None) -> bool:
    """A column whose name says it holds phone numbers (``phone``, ``mobile``, ``tel``)."""
    return bool(column and _PHONE_COLUMN.search(column))


@lru_cache(maxsize=1024)
def is_name_column(column: str | None) -> bool:
    """A column whose name says it holds people's names (``name``, ``customer_name``)."""
    return bool(
        column
        and column.lower() not in ("filename", "hostname", "username")
        and _NAME_COLUMN.search(column)
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
        wanted = self._wanted
        found: list[Finding] = []
        has_digit = _DIGIT.search(text) is not None
        if has_digit:
            if "IBAN_CODE" in wanted:
                found += _ibans(text)
            if "CREDIT_CARD" in wanted:
                found += _cards(text)
            if "US_SSN" in wanted:
                found += _ssns(text)
        if "EMAIL_ADDRESS" in wanted and "@" in text:
            found += _emails(text)
        if has_digit:
            if "IP_ADDRESS" in wanted:
                found += _ips(text)
            if "PHONE_NUMBER" in wanted:
                found += _phones(text, is_phone_column(column))
        if "PERSON" in wanted:
            found += _persons(text, is_name_column(column))
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
        local = _EMAIL_LOCAL.search(text, max(0, at - 64), at)
        domain = _EMAIL_DOMAIN.match(text, at + 1)
        if local and domain:
            out.append(
                Finding(
                    "EMAIL_ADDRESS", local.start(), domain.end(), text[local.start() : domain.end()]
                )
            )
        at = text.find("@", at + 1)
    return out


def _cards(text: str) -> list[Finding]:
    out = []
    m = _CARD.search(text)
    while m:
        span, resume = m.group(), m.end()
        while True:  # a trailing group of another number may have been taken: drop it and retry
            digits = span.replace(" ", "").replace("-", "")
            if _card_shaped(digits) and luhn_valid(digits):
                out.append(Finding("CREDIT_CARD", m.start(), m.start() + len(span), span))
                resume = m.start() + len(span)  # what was dropped may start the next card
                break
            cut = max(span.rfind(" "), span.rfind("-"))
            if cut <= 0:
                break
            span = span[:cut]
        m = _CARD.search(text, resume)
    return out


def _card_shaped(digits: str) -> bool:
    size = len(digits)
    if size < 12 or size > 19:
        return False
    if digits.startswith(_MAESTRO):
        return True
    if size >= 16:
        return digits[0] in "23456"
    return size > 12 and digits.startswith(_SHORT_PREFIXES[size])


def _ibans(text: str) -> list[Finding]:
    out = []
    m = _IBAN.search(text)
    while m:
        span, resume = m.group(), m.end()
        length = _IBAN_LENGTHS.get(span[:2])
        if length is not None:
            end, count = 0, 0  # the span's first ``length`` letters and digits (it may run on)
            for end, ch in enumerate(span, 1):  # noqa: B007
                count += ch != " "
                if count == length:
                    break
            if iban_valid(span[:end].replace(" ", "")):
                out.append(Finding("IBAN_CODE", m.start(), m.start() + end, span[:end]))
                resume = m.start() + end  # what ran on may be the next IBAN
        m = _IBAN.search(text, resume)
    return out


def _ssns(text: str) -> list[Finding]:
    out = []
    for m in _SSN.finditer(text):
        area, group, serial = m.group()[:3], m.group()[4:6], m.group()[7:]
        if area in ("000", "666") or area[0] == "9" or group == "00" or serial == "0000":
            continue  # never issued
        out.append(Finding("US_SSN", m.start(), m.end(), m.group()))
    return out


def _ips(text: str) -> list[Finding]:
    out = [
        Finding("IP_ADDRESS", m.start(), m.end(), m.group())
        for m in _IPV4.finditer(text)
        if all(len(o) == 1 or (o[0] != "0" and int(o) <= 255) for o in m.group().split("."))
    ]
    if text.count(":") >= 2:
        for m in _IPV6.finditer(text):
            try:
                ipaddress.IPv6Address(m.group())
            except ValueError:
                continue
            out.append(Finding("IP_ADDRESS", m.start(), m.end(), m.group()))
    return out


def _phones(text: str, phone_column: bool) -> list[Finding]:
    """A bare run of digits (``5552345678``) is as likely an order or account number: it
    counts only in a phone column or after a phone word (``call``, ``tel``, ``mobile``...)
    in the same sentence, at most 30 characters before it."""

    def plausible(m: re.Match[str]) -> bool:
        if phone_column or not m.group().isdigit():
            return True
        start = max(0, m.start() - 30)
        start = max(start, text.rfind(". ", start, m.start()) + 1)
        return _PHONE_CONTEXT.search(text, start, m.start()) is not None

    out = [
        Finding("PHONE_NUMBER", m.start(), m.end(), m.group())
        for m in _PHONE_NANP.finditer(text)
        if plausible(m)
    ]
    if "+" in text:
        for m in _PHONE_INTL.finditer(text):
            digits = sum(ch.isdigit() for ch in m.group())
            if 8 <= digits <= 15:
                out.append(Finding("PHONE_NUMBER", m.start(), m.end(), m.group()))
    if "0" in text:
        for m in _PHONE_UK.finditer(text):
            if 10 <= sum(ch.isdigit() for ch in m.group()) <= 11 and plausible(m):
                out.append(Finding("PHONE_NUMBER", m.start(), m.end(), m.group()))
    return out


def _persons(text: str, name_column: bool) -> list[Finding]:
    if name_column:
        m = _PERSON_VALUE.fullmatch(text.strip())
        if m and m.group(1).split(" ")[0] not in ("Unknown", "None", "Null", "Test", "Anonymous"):
            offset = text.index(m.group(1))
            return [Finding("PERSON", offset, offset + len(m.group(1)), m.group(1))]
    out = []
    for m in _PERSON_CUED.finditer(text):
        name = m.group(1)
        if name.split(" ")[0] in _NOT_NAMES:
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
