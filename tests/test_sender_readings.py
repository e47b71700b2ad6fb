"""Adobe's senders read by the probe (``probe --sender``), and told by the matrix and the demo (``demo --sender``),
against the lab server: each documented requirement broken by one endpoint and met by its sibling."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mtls_lab.caller.probe import probe
from mtls_lab.caller.senders import PROFILES, Sender, probe_notes
from mtls_lab.certs.layout import CA, Identity, LabPaths
from mtls_lab.cli import main
from mtls_lab.cli.options import SENDER_NAMES
from mtls_lab.errors import ExitCode
from mtls_lab.matrix.demo import SENDER_STEPS, STEPS, run_demo, steps_for
from mtls_lab.matrix.scenarios import SCENARIOS
from mtls_lab.server.settings import Mode
from tests.conftest import ServerFactory
from tests.test_cli import _run

# --- probe --sender: the endpoint read against the sender's requirements ------------------------------------


@pytest.mark.parametrize(("mode", "problem"), [(Mode.MIXED, True), (Mode.MTLS, False)])
def test_probe_sender_names_an_endpoint_that_is_not_mtls_only(
    mode: Mode, problem: bool, pki: LabPaths, lab_server: ServerFactory
) -> None:
    url = lab_server(mode=mode).url + "/custom-action"
    common = ("probe", url, "--certs", str(pki.root), "--server-ca", str(pki.ca(CA.SERVER_ROOT)))
    done = _run(*common, "--sender", "http-destination")
    assert "sender: Experience Platform HTTP API destination" in done.stdout
    assert (
        "sender PROBLEM: Experience Platform HTTP API destination: Adobe requires an mTLS-only" in done.stdout
    ) is problem
    assert "within the 2 s Adobe documents" in done.stdout, done.stdout[-1500:]
    data = json.loads(_run(*common, "--sender", "http-destination", "--json").stdout)
    assert [n["problem"] for n in data["sender"]["notes"]].count(True) == int(problem)
    assert all(f.endswith(")") for f in data["sender"]["facts"])
    alone = _run(*common)  # AJO's own reading: the sender's problem alone makes the exit code 1
    assert "sender" not in json.loads(_run(*common, "--json").stdout)
    assert done.returncode == (ExitCode.PROBLEMS_FOUND if problem else alone.returncode)


def test_probe_sender_measures_the_answer_against_the_deadline(pki: LabPaths, lab_server: ServerFactory) -> None:
    slow = lab_server(mode=Mode.TLS, answer_delay=2.05).url  # every request waits: the probe's first one too
    report = probe(slow + "/hook", str(pki.ca(CA.SERVER_ROOT)), pki, [], timeout=5)  # one probe, read twice
    late = probe_notes(PROFILES[Sender.HTTP_DESTINATION], report)
    assert any(n.problem and "past the 2 s Adobe documents" in n.text for n in late), late
    patient = probe_notes(PROFILES[Sender.IO_EVENTS], report)  # its deadline is 10 s
    assert any("within the 10 s" in n.text and not n.problem for n in patient), patient


def test_probe_sender_reminds_the_sms_provider_of_its_switch(pki: LabPaths, lab_server: ServerFactory) -> None:
    url = lab_server(mode=Mode.MTLS).url
    common = ("probe", url, "--certs", str(pki.root), "--server-ca", str(pki.ca(CA.SERVER_ROOT)), "--json")
    sms = [n["text"] for n in json.loads(_run(*common, "--sender", "ajo-sms").stdout)["sender"]["notes"]]
    assert any('"mTLS support"' in n for n in sms) and any("ajo-sms.aep-mtls.adobe.com" in n for n in sms)
    ajo = [n["text"] for n in json.loads(_run(*common, "--sender", "ajo-custom-action").stdout)["sender"]["notes"]]
    assert not any("mTLS support" in n or "ajo-sms" in n for n in ajo)


@pytest.mark.parametrize("command", [("probe", "https://localhost:1/"), ("demo",)])
def test_an_unknown_sender_is_one_line_before_any_work(command: tuple[str, ...], tmp_path: Path) -> None:
    done = _run(*command, "--certs", str(tmp_path / "certs"), "--sender", "marketo")
    assert done.returncode == ExitCode.USAGE and done.stdout == "", done
    assert done.stderr.startswith(f"mtls-lab {command[0]}: error: argument --sender: invalid choice: 'marketo'"), done
    assert done.stderr.count("\n") == 1 and all(name in done.stderr for name in SENDER_NAMES), done
    assert not (tmp_path / "certs").exists()  # the demo made no PKI
    from_env = _run(*command, "--certs", str(tmp_path / "certs"), env={"MTLS_LAB_SENDER": "marketo"})
    assert from_env.returncode == ExitCode.USAGE and "(from MTLS_LAB_SENDER)" in from_env.stderr, from_env


# --- the matrix and the demo per sender ---------------------------------------------------------------------


def test_every_sender_has_matrix_rows_and_a_demo_chapter_of_them() -> None:
    by_sender = {s: [r for r in SCENARIOS if r.sender is s] for s in Sender}
    for sender in Sender:
        if sender is not Sender.AJO_CUSTOM_ACTION:
            rows = by_sender[sender]
            assert any(r.accepted for r in rows) and any(not r.accepted for r in rows), sender
            assert {step.scenario_id for step in SENDER_STEPS[sender]} <= {r.id for r in SCENARIOS}
            assert all(step.chapter.startswith("6. When ") for step in SENDER_STEPS[sender])
    # Adobe's mTLS-only rule: an optional endpoint accepts the destination, and lets a call without a certificate
    # past TLS (its sibling); the rows say Adobe's rule, and the probe names it (test above)
    http = {(r.mode, r.identity): r for r in by_sender[Sender.HTTP_DESTINATION] if not r.slow}
    optional, uncertified = http[Mode.MIXED, Identity.ADOBE], http[Mode.MIXED, None]
    assert optional.accepted and "Adobe requires mTLS-only" in optional.note
    assert uncertified.expect == "403 no_client_certificate" and not uncertified.sent
    assert http[Mode.TLS, Identity.ADOBE].expect == "403 no_client_certificate"
    # the deadline row: the same slow endpoint times out for the destination, and is accepted for AJO
    slow = {r.sender: r.expect for r in SCENARIOS if r.slow}
    assert slow == {Sender.HTTP_DESTINATION: "timeout", Sender.AJO_CUSTOM_ACTION: "accepted"}


def test_demo_sender_tells_what_differs_and_the_default_demo_does_not(pki: LabPaths) -> None:
    said, good = run_demo(pki, sender=Sender.HTTP_DESTINATION)
    assert good, said
    text = " ".join(said.split())
    assert (
        "The sender, as Adobe documents it:" in text
        and "6. When Experience Platform HTTP API destination calls" in text
    )
    assert "answer deadline Adobe documents for Experience Platform HTTP API destination" in text
    assert "sender note: Experience Platform HTTP API destination: no answer within 2 s" in text
    # the optional endpoint's steps name Adobe's mTLS-only rule; the mTLS-only endpoint's step does not
    assert text.count("sender PROBLEM: Experience Platform HTTP API destination: this endpoint asks for") == 2
    assert "requires an mTLS-only endpoint (EP help/destinations/catalog/streaming/http-destination.md)" in text
    assert len(steps_for(None)) == len(STEPS) and "6. When" not in "".join(s.chapter for s in steps_for(None))


@pytest.mark.parametrize("delay", ["-1", "601", "nan"])
def test_a_bad_answer_delay_gets_one_line(delay: str, pki: LabPaths, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--certs", str(pki.root), "--port", "0", "--answer-delay", delay]) == ExitCode.USAGE
    err = capsys.readouterr().err
    assert err.startswith("mtls-lab: error: --answer-delay") and err.count("\n") == 1, err
