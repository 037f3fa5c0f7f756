"""The PII detector's gates only skip work: over thousands of generated texts, ``find`` (gated)
gives exactly the findings (entity, start, end, text) of every recognizer run over the whole
text (``find_gated(..., shape=None)``, the detector as it was before the gates).

A gate is a condition every match of its recognizer satisfies; a wrong one drops findings
silently, and only in the texts that exercise its edge. So the corpus is built to sit on the
edges: Faker values of each entity in several locales inside prose, values written back to
back with no space, other scripts' letters and digits next to them, cue words without names,
name-shaped words without cues, look-alike numbers (dates, times, versions, order ids), very
long texts, and random strings over an alphabet of the characters the patterns care about.
"""

from __future__ import annotations

import random

import pytest
from faker import Faker

from opsloop.governance.pii import ENTITIES
from opsloop.governance.pii import PiiDetector

_LOCALES = ["en_US", "en_GB", "de_DE", "fr_FR", "nl_NL", "es_ES", "it_IT"]
_CUES = ["Dear", "Mr.", "Dr", "Hi", "Thanks,", "Regards:", "my name is", "Name:", "Signed by",
         "assigned to", "Written by", "From:", "Attn", "Contact", "Sincerely,"]  # fmt: skip
# What the patterns turn on: digits, separators, letters, cue fragments, other scripts.
_PIECES = ["0", "1", "2", "4", "5", "9", "00", "555", "4111", "-", " ", ".", ":", "::", "(", ")",
           "+", "+1 ", "@", "x", "ext.", "DE", "GB89", "AB", "Mr ", "Dear ", "Hi ", "Ann",
           "McKay", "O'Neil", "name is ", "Name: ", "igned by ", "fe80", "a.b", "é",
           "\u0663", "\uff15", "日本", "\u00a0", "_", "\n"]  # fmt: skip
_CONFIGS = [
    (None, None),
    ("phone_number", None),
    ("customer_name", None),
    (None, ("PERSON",)),
    (None, ("PHONE", "CARD", "SSN")),
    (None, ("IP", "IBAN", "EMAIL")),
]


def _values(fake: Faker, rng: random.Random) -> list[tuple[str, str]]:
    """One value of each entity (a name, an e-mail, phones of two countries, a card grouped
    or not, an IBAN of some country, an SSN, IPv4 and IPv6) and look-alikes that are none."""
    us = fake["en_US"]
    card = us.credit_card_number()
    iban = fake[rng.choice(_LOCALES)].iban()
    return [
        ("PERSON", f"{rng.choice(_CUES)} {fake[rng.choice(_LOCALES)].name()}"),
        ("EMAIL_ADDRESS", us.email()),
        ("PHONE_NUMBER", fake[rng.choice(["en_US", "en_GB", "de_DE", "fr_FR"])].phone_number()),
        ("CREDIT_CARD", " ".join(card[i : i + 4] for i in range(0, len(card), 4))),
        ("CREDIT_CARD", card),
        ("IBAN_CODE", " ".join(iban[i : i + 4] for i in range(0, len(iban), 4))),
        ("IBAN_CODE", iban),
        ("US_SSN", us.ssn()),
        ("IP_ADDRESS", us.ipv4()),
        ("IP_ADDRESS", us.ipv6()),
        ("", us.date()),
        ("", us.time()),
        ("", f"order {us.random_number(digits=rng.randint(3, 16))}"),
        ("", f"v{rng.randint(0, 9)}.{rng.randint(0, 99)}.{rng.randint(0, 999)}"),
        ("", us.isbn13()),
        ("", fake[rng.choice(_LOCALES)].street_address()),
    ]


def _corpus(seed: int) -> list[str]:
    Faker.seed(seed)
    fake = Faker(_LOCALES)
    rng = random.Random(seed)
    texts: list[str] = []
    for _ in range(1200):  # prose with values, one to four of them
        values = [v for _, v in rng.sample(_values(fake, rng), rng.randint(1, 4))]
        words = fake.sentence(nb_words=rng.randint(3, 30)).split()
        for value in values:
            words.insert(rng.randint(0, len(words)), value)
        texts.append(" ".join(words))
    for _ in range(400):  # values back to back, or glued to other scripts' characters
        values = [v for _, v in rng.sample(_values(fake, rng), 3)]
        glue = rng.choice(["", "", "-", ".", ":", "/", "é", "\u0663", "\uff15", "日本", "\u00a0"])
        texts.append(glue.join(values))
    for _ in range(2000):  # random strings over the characters the patterns turn on
        texts.append("".join(rng.choice(_PIECES) for _ in range(rng.randint(1, 40))))
    texts += [v for _ in range(300) for _, v in _values(fake, rng)]  # each value alone
    long = " ".join(texts[:400])
    texts += [long, long * 3, long.replace(" ", "\n")]  # long texts, up to ~300 kB
    return texts


@pytest.fixture(scope="module")
def corpus() -> list[str]:
    return _corpus(23)


def _as_tuples(findings: list) -> list[tuple[str, int, int, str]]:
    return [(f.entity, f.start, f.end, f.text) for f in findings]


@pytest.mark.parametrize(("column", "entities"), _CONFIGS)
def test_gated_findings_equal_every_recognizer_run(
    corpus: list[str], column: str | None, entities: tuple[str, ...] | None
) -> None:
    detector = PiiDetector(entities)
    for text in corpus:
        gated = _as_tuples(detector.find(text, column=column))
        ungated = _as_tuples(detector.find_gated(text, column, None))
        assert gated == ungated, text


def test_the_corpus_exercises_every_entity(corpus: list[str]) -> None:
    """The comparison above means something only if each recognizer finds things in it, and
    each gate is both open and shut on some texts."""
    detector = PiiDetector()
    counts = dict.fromkeys(ENTITIES, 0)
    for text in corpus[:1600]:
        for f in detector.find(text):
            counts[f.entity] += 1
    assert all(n >= 20 for n in counts.values()), counts


def test_another_scripts_digit_turns_the_gates_off() -> None:
    """``\\d`` matches an Arabic-Indic or fullwidth digit, which the ASCII shape the gates read
    cannot show: such a text runs every recognizer."""
    fullwidth = str.maketrans("0123456789", "".join(chr(0xFF10 + i) for i in range(10)))
    arabic = str.maketrans("0123456789", "".join(chr(0x0660 + i) for i in range(10)))
    detector = PiiDetector(["CARD", "SSN", "IP"])
    for text in (
        "card 4111 1111 1111 " + "1111".translate(fullwidth),
        "ssn " + "219-09-9999".translate(fullwidth),
        "ip " + "192.168.0.1".translate(arabic),
    ):
        found = detector.find(text)
        assert found and found == detector.find_gated(text, None, None), text
