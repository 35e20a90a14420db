"""Redaction of personal data and secrets from prompt text before a sample of it is logged.

``redact(text)`` replaces, in this order:

    [SECRET]  API-key-like tokens (sk-..., AKIA..., ghp_..., xox?-..., JWTs, "Bearer x"),
              long hex strings (32+ digits) and long base64-like strings (32+ characters
              mixing letters and digits)
    [EMAIL]   e-mail addresses
    [IBAN]    IBANs that pass the ISO 13616 mod-97 check (with or without spaces)
    [CARD]    13-19 digit numbers (spaces or dashes allowed) that pass the Luhn check
    [IP]      IPv4 and IPv6 addresses
    [PHONE]   phone numbers: "+" and 7-15 digits, or 7-15 digits in separated groups
              ("555-123-4567", "(020) 7946 0958"); ISO dates are left alone

It errs on the side of removing too much: this text only feeds a sampled debugging log.
Digit runs that fail the IBAN and Luhn checks stay unless they look like a phone number.
"""

from __future__ import annotations

import ipaddress
import re

_SECRET_PATTERNS = (
    re.compile(r"\b(?:sk|pk|rk)-(?:[A-Za-z0-9]+-)*[A-Za-z0-9_\-]{16,}"),
    re.compile(r"\bAKIA[0-9A-Z]{16}\b"),
    re.compile(r"\bgh[pousr]_[A-Za-z0-9]{30,}\b"),
    re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}"),
    re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),
    re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/=-]{12,}"),
    re.compile(r"\b[0-9a-fA-F]{32,}\b"),
)
# Long base64/base64url runs: only when they mix letters and digits (long words stay).
_BASE64ISH = re.compile(r"(?<![A-Za-z0-9+/_-])[A-Za-z0-9+/_-]{32,}={0,2}")
_EMAIL_LOCAL = r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]"
_EMAIL = re.compile(
    rf"(?<!{_EMAIL_LOCAL}){_EMAIL_LOCAL}+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{{2,}}\b"
)
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b")
_CARD = re.compile(r"(?<![\d+-])(?:\d[ -]?){12,18}\d(?![\d-])")
_IPV4 = re.compile(
    r"(?<![\d.])(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?![\d.])"
)
_IPV6 = re.compile(r"(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:[0-9A-Fa-f]{0,4}|\d+\.\d+\.\d+\.\d+)(?![\w:])")
_PHONE_PLUS = re.compile(r"(?<![\w+])\+\d[\d ().-]{5,20}\d(?!\w)")
_PHONE_GROUPS = re.compile(r"(?<![\w+])(?:\(\d{1,5}\)[ .-]?)?\d{2,5}(?:[ .-]\d{2,5}){1,4}(?![\w])")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _digits(text: str) -> str:
    return "".join(ch for ch in text if ch.isdigit())


def luhn_ok(number: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(number)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def iban_ok(candidate: str) -> bool:
    iban = candidate.replace(" ", "")
    if not 15 <= len(iban) <= 34:
        return False
    moved = iban[4:] + iban[:4]
    numeric = "".join(str(int(ch, 36)) for ch in moved)
    return int(numeric) % 97 == 1


def _secret_like(match: re.Match[str]) -> str:
    token = match.group(0)
    if any(c.isdigit() for c in token) and any(c.isalpha() for c in token):
        return "[SECRET]"
    return token


def _card(match: re.Match[str]) -> str:
    digits = _digits(match.group(0))
    return "[CARD]" if 13 <= len(digits) <= 19 and luhn_ok(digits) else match.group(0)


def _iban(match: re.Match[str]) -> str:
    return "[IBAN]" if iban_ok(match.group(0)) else match.group(0)


def _ipv6(match: re.Match[str]) -> str:
    try:
        ipaddress.IPv6Address(match.group(0))
    except ValueError:
        return match.group(0)
    return "[IP]"


def _phone(match: re.Match[str]) -> str:
    text = match.group(0)
    if _ISO_DATE.fullmatch(text.strip()):
        return text
    return "[PHONE]" if 7 <= len(_digits(text)) <= 15 else text


def redact(text: str) -> str:
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub("[SECRET]", text)
    text = _BASE64ISH.sub(_secret_like, text)
    text = _EMAIL.sub("[EMAIL]", text)
    text = _IBAN.sub(_iban, text)
    text = _CARD.sub(_card, text)
    text = _IPV4.sub("[IP]", text)
    text = _IPV6.sub(_ipv6, text)
    text = _PHONE_PLUS.sub(_phone, text)
    return _PHONE_GROUPS.sub(_phone, text)
