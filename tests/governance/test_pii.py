"""The PII detector: each entity found inside prose, checksums that reject look-alikes, numbers
that are never persons, masks that never show a value, and no network call at any time."""

from __future__ import annotations

import socket

import pytest
from faker import Faker

from opsloop.errors import InvalidInput
from opsloop.governance.pii import ENTITIES
from opsloop.governance.pii import PiiDetector
from opsloop.governance.pii import check_entities
from opsloop.governance.pii import iban_valid
from opsloop.governance.pii import luhn_valid
from opsloop.governance.pii import mask
from tests.no_network import no_network  # noqa: F401  (fixture)


def _found(text: str, entity: str, **kw: str) -> list[str]:
    return [f.text for f in PiiDetector().find(text, **kw) if f.entity == entity]


@pytest.fixture(scope="module")
def fake() -> Faker:
    Faker.seed(23)
    return Faker(["en_US", "en_GB", "de_DE", "fr_FR"])


def test_each_entity_is_found_inside_prose(fake: Faker) -> None:
    us = fake["en_US"]
    for _ in range(50):
        email, phone, card = us.email(), us.phone_number(), us.credit_card_number()
        iban = fake["de_DE"].iban() if _ % 2 else fake["fr_FR"].iban()
        ssn, ip, ip6 = us.ssn(), us.ipv4_public(), us.ipv6()
        text = (
            f"Ticket from {email}: please call {phone} today. The card {card} was charged "
            f"twice; refund to {iban}. SSN on file {ssn}; login from {ip} and {ip6}."
        )
        assert _found(text, "EMAIL_ADDRESS") == [email]
        assert _found(text, "PHONE_NUMBER") == [phone]
        assert _found(text, "CREDIT_CARD") == [card]
        assert _found(text, "IBAN_CODE") == [iban]
        assert _found(text, "US_SSN") == [ssn]
        assert _found(text, "IP_ADDRESS") == [ip, ip6]


def test_grouped_formats_and_other_countries() -> None:
    text = (
        "Visa 4111 1111 1111 1111 and amex 3782-822463-10005; IBAN GB82 WEST 1234 5698 7654 32 "
        "TODAY; phones +44(0)113 496 0123, 0113 496 0123, +49 30 901820 and (555) 234-5678 x12"
    )
    assert _found(text, "CREDIT_CARD") == ["4111 1111 1111 1111", "3782-822463-10005"]
    assert _found(text, "IBAN_CODE") == ["GB82 WEST 1234 5698 7654 32"]  # not " TODA"
    assert _found(text, "PHONE_NUMBER") == [
        "+44(0)113 496 0123",
        "0113 496 0123",
        "+49 30 901820",
        "(555) 234-5678 x12",
    ]


def test_runs_of_values_and_bare_digits() -> None:
    # a greedy match must not swallow the start of the next value
    ibans = "GB82 WEST 1234 5698 7654 32 DE89 3704 0044 0532 0130 00 and GB82WEST12345698765432"
    assert _found(ibans, "IBAN_CODE") == [
        "GB82 WEST 1234 5698 7654 32",
        "DE89 3704 0044 0532 0130 00",
        "GB82WEST12345698765432",
    ]
    assert _found("4111 1111 1111 1111 5555 5555 5555 4444", "CREDIT_CARD") == [
        "4111 1111 1111 1111",
        "5555 5555 5555 4444",
    ]
    # ten bare digits are a phone only with a phone word in the sentence, or in a phone column
    assert _found("Order 5552345678 shipped. Call me at 5552345678", "PHONE_NUMBER") == [
        "5552345678"
    ]
    assert _found("Call us. Order 5552345678", "PHONE_NUMBER") == []
    assert _found("5552345678", "PHONE_NUMBER", column="mobile_phone") == ["5552345678"]


def test_checksums_reject_look_alikes(fake: Faker) -> None:
    for _ in range(100):
        card = fake["en_US"].credit_card_number()
        wrong = card[:-1] + str((int(card[-1]) + 1) % 10)
        assert luhn_valid(card) and not luhn_valid(wrong)
        assert _found(f"card {wrong} on file", "CREDIT_CARD") == []
        iban = fake["de_DE"].iban()
        swapped = iban[:4] + iban[5] + iban[4] + iban[6:]
        assert iban_valid(iban)
        if swapped != iban:
            assert not iban_valid(swapped)
            assert _found(f"pay to {swapped} now", "IBAN_CODE") == []
    assert not iban_valid("DE89370400440532013000" + "0")  # the country's length is checked
    assert not iban_valid("ZZ89370400440532013000")  # an unknown country
    # shapes without the structure: order numbers, dates, versions, never-issued SSNs
    text = (
        "Order 1234567890123 shipped 2024-05-17 12:30:45; SSNs 000-12-3456, 666-12-3456, "
        "900-12-3456 are never issued; call 123-456-7890 (no such area code); build 1.2.3"
    )
    assert PiiDetector().find(text) == []


def test_numbers_are_not_persons() -> None:
    detector = PiiDetector(["PERSON"])
    for text in ("Mr. 12345", "Dear 555-0100", "my name is 42", "Dr. 4111 1111", "Dear Team"):
        assert detector.find(text) == [], text
    for value in ("12345", "4111111111111111", "N/A", "2024-01-01", "Unknown"):
        assert detector.find(value, column="customer_name") == [], value
    assert [f.text for f in detector.find("Hi Mrs. Jane Doe, this is Dr. O'Neil-Smith")] == [
        "Jane Doe",
        "O'Neil-Smith",
    ]
    # a name column's name-shaped value is a person; the same value in another column is not
    assert [f.text for f in detector.find("Dr. Ann McKay MD", column="full_name")] == ["Ann McKay"]
    assert detector.find("Ann McKay", column="product") == []
    assert detector.notes  # the scan says what PERSON cannot find


def test_masks_never_show_the_value(fake: Faker) -> None:
    assert mask("john.smith@example.com", "EMAIL_ADDRESS") == "j***@e***.com"
    assert mask("4111 1111 1111 1111", "CREDIT_CARD") == "**** **** **** **11"
    assert mask("John Smith", "PERSON") == "J*** S***"
    assert mask("DE89 3704 0044 0532 0130 00", "IBAN_CODE") == "DE**…**00"
    assert mask("192.168.10.20", "IP_ADDRESS") == "192.***"
    for _ in range(20):
        for value, entity in (
            (fake["en_US"].email(), "EMAIL_ADDRESS"),
            (fake["en_US"].phone_number(), "PHONE_NUMBER"),
            (fake["en_US"].ssn(), "US_SSN"),
        ):
            shown = mask(value, entity)
            assert shown != value and "***" in shown.replace("-", "").replace(".", ""), shown


def test_entity_names_are_checked() -> None:
    assert check_entities(["email", "PHONE", "credit_card"]) == (
        "EMAIL_ADDRESS",
        "PHONE_NUMBER",
        "CREDIT_CARD",
    )
    assert check_entities(None) == ENTITIES
    with pytest.raises(
        InvalidInput, match=r"unknown PII entity 'PASSPORT'; known: IBAN_CODE, CREDIT_CARD"
    ):
        PiiDetector(["EMAIL_ADDRESS", "PASSPORT"])
    with pytest.raises(InvalidInput, match="at least one"):
        check_entities([])
    only_email = PiiDetector(["EMAIL"])
    assert [f.entity for f in only_email.find("a@b.io or 4111111111111111")] == ["EMAIL_ADDRESS"]


def test_the_guard_refuses_the_network(no_network: list[str]) -> None:  # noqa: F811
    """The fixture the no-network tests rely on does block: a test that cannot fail proves
    nothing."""
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("192.0.2.1", 80), 1):
        pass
    assert no_network and "192.0.2.1" in no_network[0]
    no_network.clear()
    with socket.socket() as server:  # loopback stays open (test servers live there)
        server.bind(("127.0.0.1", 0))
        server.listen()
        with socket.create_connection(server.getsockname(), 1):
            pass
    assert no_network == []


@pytest.mark.slow
def test_presidio_on_a_blank_pipeline_makes_no_network_call(no_network: list[str]) -> None:  # noqa: F811
    """Presidio's own recognizers, loaded and run with sockets blocked: no model download, no
    public suffix list fetch (its e-mail check), and no NER, so no PERSON at all."""
    from opsloop.governance.pii_presidio import PresidioDetector

    detector = PresidioDetector()
    text = (
        "Dear John Smith, write to john.smith@example.com or call (555) 234-5678; "
        "card 4111 1111 1111 1111, IBAN DE89 3704 0044 0532 0130 00, from 192.168.0.1"
    )
    found = {f.entity: f.text for f in detector.find(text)}
    assert found["EMAIL_ADDRESS"] == "john.smith@example.com"
    assert found["CREDIT_CARD"] == "4111 1111 1111 1111"
    assert found["IBAN_CODE"] == "DE89 3704 0044 0532 0130 00"
    assert found["IP_ADDRESS"] == "192.168.0.1"
    assert "PERSON" not in found and detector.notes
    with pytest.raises(InvalidInput, match="unknown Presidio entity 'NOPE'"):
        PresidioDetector(["NOPE"])
    assert no_network == []
