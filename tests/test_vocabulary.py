"""The shared vocabulary: one short form of an answer, reason codes that are the wire format."""

from __future__ import annotations

import pytest

from mtls_lab.vocabulary import AdobeChain, AJOLimits, Reason, short_answer


@pytest.mark.parametrize(
    ("status", "alert", "reason", "expected"),
    [
        (403, None, None, "HTTP 403"),
        (400, None, "nginx_no_certificate", "HTTP 400 nginx_no_certificate"),
        (None, "bad_certificate", None, "alert bad_certificate"),
        (200, "decode_error", None, "HTTP 200"),
        (None, None, None, ""),
    ],
)
def test_short_answer(status: int | None, alert: str | None, reason: str | None, expected: str) -> None:
    assert short_answer(status, alert, reason) == expected


def test_the_tables_form_drops_http_and_nothing_else() -> None:
    assert short_answer(403, bare_status=True) == "403"
    assert short_answer(400, None, "nginx_no_certificate", bare_status=True) == "400 nginx_no_certificate"
    assert short_answer(None, "unknown_ca", None, bare_status=True) == "alert unknown_ca"
    assert short_answer(bare_status=True) == ""


def test_reason_values_are_their_wire_names() -> None:
    assert all(reason.value == reason.name.lower() for reason in Reason)
    assert Reason("no_client_certificate") is Reason.NO_CLIENT_CERTIFICATE
    with pytest.raises(ValueError, match="not a valid Reason"):
        Reason("no_certificate")


def test_chain_names_and_limits() -> None:
    assert AdobeChain.MIGRATION_ROOT in AdobeChain.ROOTS and AdobeChain.TODAY_ROOT in AdobeChain.ROOTS
    assert AJOLimits.TIMEOUT_MIN < AJOLimits.TIMEOUT_DEFAULT <= AJOLimits.TIMEOUT_MAX
