"""The prompt redactor: what it removes, and what it leaves alone."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.redact import iban_ok, luhn_ok, redact


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("write to john.doe+news@mail.example.co.uk today", "write to [EMAIL] today"),
        ("card 4111 1111 1111 1111 exp 12/29", "card [CARD] exp 12/29"),
        ("card 5500-0000-0000-0004", "card [CARD]"),
        ("amex 378282246310005.", "amex [CARD]."),
        ("IBAN GB82 WEST 1234 5698 7654 32 please", "IBAN [IBAN] please"),
        ("IBAN DE89370400440532013000", "IBAN [IBAN]"),
        (
            "key sk-proj-AbCdEf0123456789xyzXYZ and sk-ant-api03-abcdefghij0123456789",
            "key [SECRET] and [SECRET]",
        ),
        ("aws AKIAIOSFODNN7EXAMPLE", "aws [SECRET]"),
        ("token ghp_abcdefghijklmnopqrstuvwxyz0123456789", "token [SECRET]"),
        ("Authorization: Bearer abc.def-ghi_jkl123", "Authorization: [SECRET]"),
        (
            "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
            "jwt [SECRET]",
        ),
        ("sha 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", "sha [SECRET]"),
        ("blob QWxhZGRpbjpvcGVuIHNlc2FtZTEyMzQ1Njc4OTA=", "blob [SECRET]"),
        ("from 10.0.0.12 and 192.168.100.254:8080", "from [IP] and [IP]:8080"),
        ("v6 2001:db8:85a3::8a2e:370:7334 and fe80::1", "v6 [IP] and [IP]"),
        ("call +44 20 7946 0958 or (555) 123-4567", "call [PHONE] or [PHONE]"),
        ("ring 555.123.4567 now", "ring [PHONE] now"),
        ("intl +4915112345678", "intl [PHONE]"),
    ],
)
def test_redacts(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "released on 2024-01-15 at 12:30:45, version 1.2.3",
        "the answer is 42, 1000 users, 3.14159",
        "card-like but wrong: 4111 1111 1111 1112 is not valid",
        "an ordinary extraordinarilylongwordwithoutanydigitsinsideatall",
        "Summarise chapter 12 of the policy wiki, sections 4-6",
        "call the function foo::bar::baz() in C++",
        "order number 12345",
    ],
)
def test_leaves_ordinary_text_alone(text: str) -> None:
    assert redact(text) == text


def test_checks() -> None:
    assert luhn_ok("4111111111111111") and not luhn_ok("4111111111111112")
    assert iban_ok("GB82 WEST 1234 5698 7654 32") and not iban_ok("GB83 WEST 1234 5698 7654 32")


def _luhn_complete(body: str) -> str:
    for check in "0123456789":
        if luhn_ok(body + check):
            return body + check
    raise AssertionError("unreachable")


@given(st.text(alphabet="0123456789", min_size=15, max_size=15), st.sampled_from([" ", "-", ""]))
def test_any_valid_card_number_goes(body: str, sep: str) -> None:
    number = _luhn_complete(body)
    grouped = sep.join(number[i : i + 4] for i in range(0, 16, 4))
    out = redact(f"pay with {grouped} thanks")
    assert number[-8:] not in out.replace(sep, "") if sep else number not in out


@given(st.emails())
def test_any_email_goes(email: str) -> None:
    assert email not in redact(f"mail {email} now")
