"""Adobe's sender profiles (caller/senders.py) and `mtls-lab call --sender`, against real endpoints.

Each documented requirement has a case that breaks it and a sibling that meets it: the HTTP API
destination's mTLS-only endpoint and its 2 s answer deadline; the SMS provider's own certificate name;
the retries a sender does not document (one attempt) next to AJO's custom action (up to three).
"""

from __future__ import annotations

import json

import pytest

from mtls_lab.caller.action import parse
from mtls_lab.caller.call import CallOptions, call, lab_identity
from mtls_lab.caller.senders import PROFILES, Sender, apply, notes, profile
from mtls_lab.caller.tls import Chain
from mtls_lab.caller.verdict import Verdict
from mtls_lab.certs.layout import CA, LabPaths
from mtls_lab.cli.options import SENDER_NAMES
from mtls_lab.errors import ExitCode
from mtls_lab.server.settings import Mode
from tests.conftest import ServerFactory
from tests.support.scripted_endpoint import Script, scripted_endpoint
from tests.test_cli import _run


def _as(sender: Sender, pki: LabPaths, url: str) -> tuple[list[str], Verdict]:
    chosen = PROFILES[sender]
    options = apply(chosen, CallOptions(pki=pki, identity=lab_identity(pki, "adobe", Chain.FULL)))
    verdict = call(parse({"name": "x", "url": url + "/custom-action"}), {}, options)
    return notes(chosen, verdict), verdict


def test_the_cli_offers_every_profile_and_every_profile_cites_adobe() -> None:
    assert [s.value for s in Sender] == SENDER_NAMES and set(PROFILES) == set(Sender)
    for chosen in PROFILES.values():
        assert chosen.facts and all(f.source for f in chosen.facts)
        assert all(f.source.startswith(("EP ", "JO ", "IOE ")) for f in chosen.facts)
    assert PROFILES[Sender.AJO_CUSTOM_ACTION].common_name == "ajo-journeys.aep-mtls.adobe.com"
    assert PROFILES[Sender.AJO_SMS].common_name == "ajo-sms.aep-mtls.adobe.com"
    assert PROFILES[Sender.HTTP_DESTINATION].common_name is None  # not documented: said to be unknown
    assert "unknown" in PROFILES[Sender.EVENT_FORWARDING].lines()[0]


def test_an_http_destination_needs_an_mtls_endpoint(pki: LabPaths, lab_server: ServerFactory) -> None:
    found, _ = _as(Sender.HTTP_DESTINATION, pki, lab_server(mode=Mode.TLS).url)
    assert any("did not ask for a client certificate" in n for n in found)
    found, verdict = _as(Sender.HTTP_DESTINATION, pki, lab_server(mode=Mode.MTLS).url)
    assert verdict.outcome.value == "accepted" and not found


def test_an_http_destination_needs_an_answer_within_2_s(pki: LabPaths) -> None:
    slow = Script({"/custom-action": [(200, "{}", {})]}, delay={"/custom-action": 2.4})
    with scripted_endpoint(pki, slow) as url:
        found, verdict = _as(Sender.HTTP_DESTINATION, pki, url)
    assert verdict.outcome.value == "timeout" and len(verdict.attempts) == 1
    assert any("no answer within 2 s" in n for n in found)
    quick = Script({"/custom-action": [(200, "{}", {})]}, delay={"/custom-action": 0.3})
    with scripted_endpoint(pki, quick) as url:
        found, verdict = _as(Sender.HTTP_DESTINATION, pki, url)
    assert verdict.outcome.value == "accepted" and not any("2 s" in n for n in found)


def test_undocumented_retries_make_one_attempt_and_ajo_keeps_its_three(pki: LabPaths) -> None:
    script = Script({"/custom-action": [(500, "{}", {})]})
    with scripted_endpoint(pki, script) as url:
        _, sms = _as(Sender.AJO_SMS, pki, url)
        _, ajo = _as(Sender.AJO_CUSTOM_ACTION, pki, url)
    assert len(sms.attempts) == 1 and len(ajo.attempts) == 4


def test_the_sms_provider_presents_its_own_name(pki: LabPaths, lab_server: ServerFactory) -> None:
    found, _ = _as(Sender.AJO_SMS, pki, lab_server(mode=Mode.MTLS).url)
    assert any("ajo-sms.aep-mtls.adobe.com" in n and n.startswith("model:") for n in found)
    found, _ = _as(Sender.AJO_CUSTOM_ACTION, pki, lab_server(mode=Mode.MTLS).url)
    assert not any("ajo-sms" in n for n in found)


@pytest.mark.parametrize("mode", [Mode.TLS, Mode.MTLS])
def test_call_sender_prints_the_profile_and_its_notes(mode: Mode, pki: LabPaths, lab_server: ServerFactory) -> None:
    url = lab_server(mode=mode).url + "/custom-action"
    common = ("call", "--certs", str(pki.root), "--url", url, "--server-ca", str(pki.ca(CA.SERVER_ROOT)))
    done = _run(*common, "--sender", "http-destination")
    assert "sender: Experience Platform HTTP API destination" in done.stdout and "answer within 2 s" in done.stdout
    assert ("sender note:" in done.stdout) is (mode is Mode.TLS)
    data = json.loads(_run(*common, "--sender", "http-destination", "--json").stdout)
    assert data["sender"]["name"] == "http-destination" and bool(data["sender"]["notes"]) is (mode is Mode.TLS)
    plain = _run(*common)
    assert "sender:" not in plain.stdout and "sender" not in json.loads(_run(*common, "--json").stdout)
    assert profile("http-destination").answer_deadline == 2.0


def test_an_unknown_sender_is_a_usage_error() -> None:
    done = _run("call", "--sender", "marketo")
    assert done.returncode == ExitCode.USAGE and done.stdout == "", done
    assert done.stderr.startswith("mtls-lab call: error: argument --sender: invalid choice: 'marketo'"), done
    assert done.stderr.count("\n") == 1, done
