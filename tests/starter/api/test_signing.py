"""Webhook signatures (c2c/signing.py): what is accepted and what is refused, and why."""

from __future__ import annotations

import pytest

from c2c.signing import SignatureError, sign, verify
from domain.names import SIGNATURE_TOLERANCE_S

BODY = b'{"type": "contract.approved", "data": {}}'
SECRET = "whsec-current"
OLD_SECRET = "whsec-previous"
NOW = 1_800_000_000


def test_a_valid_signature_returns_its_timestamp() -> None:
    header = sign(BODY, SECRET, timestamp=NOW)
    assert verify(header, BODY, [SECRET], now=NOW + 5) == NOW


def test_the_header_has_the_documented_format() -> None:
    t, v1 = sign(BODY, SECRET, timestamp=NOW).split(",")
    assert t == f"t={NOW}"
    assert v1.startswith("v1=") and len(v1) == len("v1=") + 64


def test_a_wrong_secret_is_refused() -> None:
    header = sign(BODY, "someone-else", timestamp=NOW)
    with pytest.raises(SignatureError, match="does not match"):
        verify(header, BODY, [SECRET], now=NOW)


def test_a_changed_body_is_refused() -> None:
    header = sign(BODY, SECRET, timestamp=NOW)
    with pytest.raises(SignatureError, match="does not match"):
        verify(header, BODY + b" ", [SECRET], now=NOW)


@pytest.mark.parametrize("skew", [SIGNATURE_TOLERANCE_S + 1, -(SIGNATURE_TOLERANCE_S + 1)])
def test_a_timestamp_outside_the_tolerance_is_refused(skew: int) -> None:
    header = sign(BODY, SECRET, timestamp=NOW)
    with pytest.raises(SignatureError, match="tolerance"):
        verify(header, BODY, [SECRET], now=NOW + skew)


def test_a_timestamp_at_the_edge_of_the_tolerance_is_accepted() -> None:
    header = sign(BODY, SECRET, timestamp=NOW)
    assert verify(header, BODY, [SECRET], now=NOW + SIGNATURE_TOLERANCE_S) == NOW


@pytest.mark.parametrize(
    "header",
    [None, "", "garbage", "v1=abc", f"t={NOW}", f"t=soon,v1={'0' * 64}", "t=,v1="],
)
def test_a_missing_or_malformed_header_is_refused(header: str | None) -> None:
    with pytest.raises(SignatureError, match=r"missing|malformed"):
        verify(header, BODY, [SECRET], now=NOW)


def test_without_a_configured_secret_everything_is_refused() -> None:
    with pytest.raises(SignatureError, match="no webhook secret"):
        verify(sign(BODY, SECRET, timestamp=NOW), BODY, [], now=NOW)


def test_during_rotation_both_secrets_are_accepted() -> None:
    accepted = [SECRET, OLD_SECRET]
    assert verify(sign(BODY, SECRET, timestamp=NOW), BODY, accepted, now=NOW) == NOW
    assert verify(sign(BODY, OLD_SECRET, timestamp=NOW), BODY, accepted, now=NOW) == NOW


def test_after_rotation_the_old_secret_is_refused() -> None:
    with pytest.raises(SignatureError, match="does not match"):
        verify(sign(BODY, OLD_SECRET, timestamp=NOW), BODY, [SECRET], now=NOW)


def test_a_sender_may_sign_with_both_secrets_in_one_header() -> None:
    old = sign(BODY, OLD_SECRET, timestamp=NOW).split(",")[1]
    header = f"{sign(BODY, SECRET, timestamp=NOW)},{old}"
    assert verify(header, BODY, [OLD_SECRET], now=NOW) == NOW
