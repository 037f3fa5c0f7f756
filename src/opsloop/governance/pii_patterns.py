"""The tables, checksums and patterns of :mod:`opsloop.governance.pii`, and its gates.

The recognizers' patterns are each one compiled regex; what they match is checked after (Luhn,
mod-97, octets, never-issued SSNs) in :mod:`.pii`. The gates below are what makes a text
without PII cheap: each is a condition every match of a recognizer satisfies, written so that
C code decides it in a microsecond or two (a substring search, or a regex with a literal
prefix), where the recognizer's own regex tries its pattern at every digit (~15 µs over a
600-character prompt with a few numbers in it) or, for the patterns that start with a
lookbehind or ``\\b``, at every position (~20-30 µs). A gate that holds runs the recognizer
over the whole text, so the findings are those of the recognizers alone; a gate only skips
work (``tests/governance/test_pii_equivalence.py`` holds the two to the same findings).

Most gates read the text's *shape*: the text with every ASCII digit made ``0``, every
ASCII upper-case letter ``A``, every lower-case one ``a`` and every non-ASCII character ``?``
(one ``bytes.translate``), so ``4111 1111`` and ``5555 2345`` look alike and
``"000-00-0000" in shape`` finds every SSN candidate at once. ``\\d`` in the recognizers also
matches other scripts' digits (Arabic-Indic, fullwidth), which the shape cannot show: a text
holding one is not gated.
"""

from __future__ import annotations

import re

# ISO 13616 lengths per country (the registry's common members).
IBAN_LENGTHS = {
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


# -- patterns ----------------------------------------------------------------------------------
EMAIL_LOCAL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}$")
EMAIL_DOMAIN = re.compile(r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}\b")
# Each pattern starts with a character class and checks what precedes it with a lookbehind
# after it: ``re`` then skips ahead to candidate characters instead of trying every position
# (an IPv4 scan is 4x faster written this way).
CARD = re.compile(r"(?:[2-6]\d{3}|1800)(?<![\w.-]....)(?:[ -]?\d){8,15}(?![\d])")
# Issuer prefixes of the shorter card lengths (a 13-15 digit number is a card only with one):
# Visa 13; Diners 14; Amex and JCB 15; Maestro 12-19. Lengths 16-19 take any 2-6 start.
SHORT_PREFIXES = {13: ("4",), 14: ("30", "36", "38", "39"), 15: ("34", "37", "1800", "2131")}
MAESTRO = (
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
IBAN = re.compile(r"[A-Z](?<![A-Z0-9].)[A-Z]\d{2}(?: ?[A-Z0-9]){11,30}")
SSN = re.compile(r"\d(?<![\d-].)\d\d([- ])\d\d\1\d{4}(?![\d-])")
IPV4 = re.compile(r"\d(?<![\d.].)\d{0,2}(?:\.\d{1,3}){3}(?!\.?\d)")  # octets <= 255 checked after
IPV6 = re.compile(r"(?<![0-9A-Fa-f:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![0-9A-Fa-f:])")
PHONE_NANP = re.compile(
    r"(?<![\w+])(?:(?:\+1|001|1)[-. ]?)?(?:\([2-9]\d\d\) ?|[2-9]\d\d[-. ]?)[2-9]\d\d[-. ]?\d{4}"
    r"(?: ?(?:x|ext\.?) ?\d{1,6})?(?!\w)"
)
PHONE_INTL = re.compile(r"\+[1-9]\d{0,2}(?:\(0\))?[ .-]?(?:\(?\d{1,5}\)?[ .-]?){1,5}\d{2,5}(?!\w)")
PHONE_UK = re.compile(r"(?<![\w+])(?:\(0\d{2,4}\) ?|0\d{2,4} ?)(?:\d{3,4} ?\d{3,4}|\d{6,8})(?!\w)")
HONORIFIC = (
    r"(?:Mr|Mrs|Ms|Mx|Miss|Dr|Prof|Sir|Dame|Mister|Madam|Dear|Hi|Hello|Hey|Thanks|Regards|"
    r"Sincerely|Attn|Patient|Customer|Client|Employee|Contact)"
)
NAME = r"(?:[A-Z]'|[A-Z][a-z]{1,2})?[A-Z][a-z]+(?:[-'][A-Z]?[a-z]+)?"  # Ann, McKay, O'Neil
FULL_NAME = rf"{NAME}(?: (?:[A-Z]\. )?{NAME}){{0,2}}"
PERSON_CUED = re.compile(
    rf"(?:\b{HONORIFIC}\.?,?:? |\b(?:[Mm]y name is|[Nn]ame:|[Ss]igned by|[Aa]ssigned to|"
    rf"[Ww]ritten by|[Ff]rom:) )(?:(?:Mr|Mrs|Ms|Dr|Prof)\.? )?({FULL_NAME})"
)
PERSON_VALUE = re.compile(
    rf"(?:(?:Mr|Mrs|Ms|Dr|Prof)\.? )?({FULL_NAME})(?: [JS]r\.?| I{{1,3}}| MD| PhD| DDS| DVM)?"
)
NOT_NAME_WORDS = (
    "Team All Everyone Customer Customers Sir Madam There World Support Friend Friends Thanks "
    "The This That A An Our Your My Monday Tuesday Wednesday Thursday Friday Saturday Sunday "
    "January February March April May June July August September October November December "
    "Mr Mrs Ms Mx Miss Dr Prof Sir Dame Mister"
)
NOT_NAMES = frozenset(NOT_NAME_WORDS.split())
NAME_COLUMN = re.compile(
    r"(?:^|[_\W])(?:full_?|first_?|last_?|given_?|family_?|sur|user_?|customer_?|contact_?|"
    r"patient_?|employee_?|author_?)?name(?:s)?(?:$|[_\W])|^(?:author|customer|contact|"
    r"patient|person|employee|owner|assignee|reporter)$",
    re.IGNORECASE,
)
DIGIT = re.compile(r"\d")
PHONE_CONTEXT = re.compile(
    r"(?i)\b(?:phone|tel|telephone|mobile|cell|fax|call|sms|text|whatsapp|ph|dial|contact)"
)
PHONE_COLUMN = re.compile(r"(?i)phone|(?:^|_)(?:tel|mobile|cell|fax|msisdn)(?:$|_)")


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


def iban_valid(compact: str) -> bool:
    """An IBAN without spaces: known country, its length, and mod-97 == 1 (ISO 7064)."""
    if IBAN_LENGTHS.get(compact[:2]) != len(compact):
        return False
    moved = compact[4:] + compact[:4]
    number = "".join(str(int(ch, 36)) for ch in moved)
    return int(number) % 97 == 1


def card_shaped(digits: str) -> bool:
    """A card number's length, with its issuer's prefix for lengths only some issuers use."""
    size = len(digits)
    if size < 12 or size > 19:
        return False
    if digits.startswith(MAESTRO):
        return True
    if size >= 16:
        return digits[0] in "23456"
    return size > 12 and digits.startswith(SHORT_PREFIXES[size])


# -- gates -------------------------------------------------------------------------------------
# The shape of a text: digits 0, letters A or a, other ASCII as it is (see the docstring).
_DIGITS, _UPPER, _LOWER = b"0123456789", bytes(range(65, 91)), bytes(range(97, 123))
SHAPE = bytes.maketrans(_DIGITS + _UPPER + _LOWER, b"0" * 10 + b"A" * 26 + b"a" * 26)
OTHER_DIGIT = re.compile(r"[^\x00-\x7f](?<=\d)")  # a digit ``SHAPE`` cannot show
# Each holds wherever its recognizer matches (the part of the match named in the comment).
GATE_IBAN = "AA00"  # the country and check digits
GATE_SSN, GATE_SSN_SP = "000-00-0000", "000 00 0000"
GATE_CARD = re.compile(r"0000(?:[ -]?0){8}")  # the issuer's 4 digits and the next 8
GATE_IPV4 = re.compile(r"0\.0{1,3}\.0{1,3}\.0")  # from the first octet's last digit
GATE_IPV6 = re.compile(r":[0-9A-Fa-f]{0,4}:")  # the first two groups' colons (on the text)
GATE_NANP = re.compile(r"000[-. ]?0000")  # the exchange and the line number
GATE_UK = re.compile(r"000\)? ?000")  # the area code's last 3 digits, the number's first 3
# A cued name follows an honorific and a space, then an upper-case letter (the name's, or a
# title's): the shape of that first, then the words; the phrase cues (``my name is``) are
# found by substring in ``pii``.
GATE_TITLED = re.compile(r"Aa{1,8}\.?,?:? A")  # Mr .. Sincerely: a capital, 1-8 letters
GATE_HONORIFIC = re.compile(rf"{HONORIFIC}\.?,?:? [A-Z]")  # on the text, not the shape
