"""The HTML reports, made from live runs and checked as people see them: in headless Chromium.

Each report comes from the real command (``--report``) against real servers on loopback: the lab server
(TLS-only; mTLS-only naming another CA), a scripted endpoint whose certificate and answers carry markup and
script, and the matrix. The browser checks what is rendered (the verdict in the first screenful, the
ladder's arrows and labels, the certificates), that nothing reaches for the network, that no console error
occurs, and that hostile input stays text. The harness itself is checked on pages that must fail.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from html import unescape
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, ClassVar

import pytest
import trustme

from mtls_lab.caller.action import parse
from mtls_lab.caller.call import CallOptions, call
from mtls_lab.caller.verdict import Outcome
from mtls_lab.certs.layout import CA, LabPaths
from mtls_lab.cli import main
from mtls_lab.errors import ExitCode
from mtls_lab.matrix.demo import STEPS
from mtls_lab.report import render, server_side, views
from mtls_lab.report.reports import call_report
from mtls_lab.report.reproduce import scenario_commands
from mtls_lab.report.views import scenario_anchor
from mtls_lab.server.run import RunningServer
from mtls_lab.server.settings import Mode, ServerConfig
from tests.support.browser import Browser, Page
from tests.support.docs_check import Scratch
from tests.support.ports import free_port
from tests.support.record import entries
from tests.support.scripted_endpoint import Script, json_body, scripted_endpoint

HOSTILE_CN = "<script>window.__pwned=1</script>"
HOSTILE_ORG = '<img src=x onerror="window.__pwned=2">'
HOSTILE_BODY = json_body(
    {
        "reason": "no_client_certificate",
        "message": "<script>window.__pwned=3</script><b>not bold</b>",
        "fix": '<img src=x onerror="window.__pwned=4">',
    }
)
REPO = Path(__file__).resolve().parent.parent
MATRIX = [
    "mtls/tls1.3/adobe/java",
    "tls/tls1.3/adobe/java",
    "mixed/tls1.3/adobe/java/advertises-other-ca",
    "mtls/tls1.2/adobe/java/advertises-other-ca",
    "mtls/tls1.3/adobe/java/advertises-other-ca",
    "mtls/tls1.3/impostor/openssl",
    "mtls/tls1.3/adobe/java/custom-auth/authorizes-both/token-endpoint-mtls",
]


@dataclass
class Run:
    code: int
    out: str
    err: str


def cli(*args: str | Path) -> Run:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in args])
    return Run(code, out.getvalue(), err.getvalue())


@contextlib.contextmanager
def lab(pki: LabPaths, record: Path, **settings: Any) -> Iterator[str]:
    config = ServerConfig(certs=pki.root, quiet=True, record=record, **settings)
    server = RunningServer(config).start()
    try:
        yield server.url
    finally:
        server.request_stop()
        server.stop()


@pytest.fixture(scope="module")
def reports(pki: LabPaths, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every report kind, each written by its command from a live run."""
    out = tmp_path_factory.mktemp("reports")
    made: dict[str, Path] = {}

    def report(name: str, expect: ExitCode, *args: str | Path) -> None:
        made[name] = out / f"{name}.html"
        done = cli(*args, "--certs", pki.root, "--report", made[name])
        assert done.code == expect, done.err

    ca = ("--server-ca", pki.ca(CA.SERVER_ROOT))
    with lab(pki, out / "tls.jsonl", mode=Mode.TLS) as url:
        record = ("--server-record", out / "tls.jsonl")
        report("probe-tls-only", ExitCode.PROBLEMS_FOUND, "probe", url + "/custom-action", *ca, *record)
        report("call-tls-only", ExitCode.HTTP_ERROR, "call", "--url", url + "/custom-action", "--retries", "0", *record)
        report("probe-untrusted", ExitCode.PROBLEMS_FOUND, "probe", url, "--server-ca", pki.ca(CA.IMPOSTOR_ROOT))
    with lab(pki, out / "mtls.jsonl", mode=Mode.MTLS, advertise_ca=str(pki.ca(CA.IMPOSTOR_ROOT))) as url:
        record = ("--server-record", out / "mtls.jsonl")
        report("probe-mtls-other-ca", ExitCode.PROBLEMS_FOUND, "probe", url + "/custom-action", *ca)
        call_args = ("call", "--url", url + "/custom-action", "--retries", "0", *record)
        report("call-mtls-other-ca", ExitCode.TLS_REJECTED, *call_args)
    report("matrix", ExitCode.OK, "matrix", *[arg for scenario in MATRIX for arg in ("--only", scenario)])
    report("demo", ExitCode.OK, "demo")  # what `make demo` writes
    made["hostile"] = _hostile_report(pki, out)
    return made


def _hostile_report(pki: LabPaths, out: Path) -> Path:
    """A call to an endpoint whose certificate, answer and (lab) record carry markup and script."""
    ca = trustme.CA(organization_name=HOSTILE_ORG)
    ca.cert_pem.write_to_path(str(out / "hostile-ca.pem"))
    ca.issue_cert("localhost", common_name=HOSTILE_CN).private_key_and_cert_chain_pem.write_to_path(
        str(out / "hostile-server.pem")
    )
    script = Script(answers={"/hook": [(403, HOSTILE_BODY, {})]})
    with scripted_endpoint(pki, script, server_pem=out / "hostile-server.pem") as base:
        url = base.replace("127.0.0.1", "localhost") + "/hook"
        options = CallOptions(pki=pki, server_ca=out / "hostile-ca.pem", retries=0)
        verdict = call(parse({"name": "hostile", "url": url, "method": "POST"}), {}, options)
    assert verdict.status == 403 and "<script>" in verdict.explanation
    record = out / "hostile.jsonl"
    entry = {
        "time": dt.datetime.now(dt.UTC).isoformat(),
        "client": f"127.0.0.1:{verdict.attempts[-1].local_port}",
        "method": "POST",
        "path": "/hook<script>window.__pwned=5</script>",
        "headers": [["x-evil", "<script>window.__pwned=6</script>"]],
        "body": "</pre><script>window.__pwned=7</script>",
        "status": 403,
        "client_certificate": {"subject": HOSTILE_CN, "issuer": HOSTILE_ORG, "sha256": "00"},
    }
    record.write_text(json.dumps(entry) + "\n")
    path = out / "hostile.html"
    argv = ["mtls-lab", "call", "--url", url, "--server-ca", str(out / "hostile-ca.pem"), "--report", str(path)]
    render.write(path, call_report(verdict, argv=argv, pki=pki, identity=None, server_record=record))
    return path


# --- the HTML itself ------------------------------------------------------------------------------------


class References(HTMLParser):
    """Every reference a page makes outside itself: URL attributes, loading elements, CSS urls and imports."""

    LOADING: ClassVar[set[str]] = {"link", "img", "iframe", "object", "embed", "audio", "video", "source", "frame"}
    URLS: ClassVar[set[str]] = {"src", "href", "srcset", "action", "data", "poster", "background", "xlink:href"}

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []
        self.in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.LOADING:
            self.found.append(f"<{tag}>")
        self.found += [
            f"{name}={value}" for name, value in attrs if name in self.URLS and not (value or "").startswith("#")
        ]
        self.in_style = tag == "style"

    def handle_data(self, data: str) -> None:
        if self.in_style:
            self.found += re.findall(r"@import|url\((?!#)", data)

    def handle_endtag(self, tag: str) -> None:
        self.in_style = False

    @classmethod
    def of(cls, html: str) -> list[str]:
        parser = cls()
        parser.feed(html)
        return parser.found


def test_every_report_is_one_file_that_references_nothing_outside_itself(reports: dict[str, Path]) -> None:
    for name, path in reports.items():
        html = path.read_text()
        assert References.of(html) == [], name
        assert "default-src 'none'" in unescape(html) and "connect-src 'none'" in unescape(html), name
        assert html.count("<script") == (1 if name in ("matrix", "demo") else 0), name


def test_the_reference_check_catches_one() -> None:
    for html in ('<img src="x.png">', '<a href="http://x/">', "<style>a { background: url(http://x/) }</style>"):
        assert References.of(html), html
    assert References.of('<a href="#s-1">s</a><p>src=x url(http://x)</p>') == []


def test_hostile_input_is_escaped_in_the_source(reports: dict[str, Path]) -> None:
    html = reports["hostile"].read_text()
    assert "<script>window" not in html and "<img src=x" not in html and "<b>not bold" not in html
    assert "\\&lt;script\\&gt;window.__pwned=1\\&lt;/script\\&gt;" in html  # the certificate's subject, as text
    assert "window.__pwned=3" in html and "window.__pwned=7" in html  # the body and the record: shown, escaped


def test_a_report_never_overwrites_a_file(pki: LabPaths, tmp_path: Path) -> None:
    existing = tmp_path / "report.html"
    existing.write_text("keep me")
    done = cli("matrix", "--only", MATRIX[0], "--certs", pki.root, "--report", existing)
    assert done.code == ExitCode.USAGE and done.out == ""  # refused before the matrix ran
    assert "already exists: choose a new file name" in done.err and "Traceback" not in done.err
    assert existing.read_text() == "keep me"
    missing = cli("matrix", "--only", MATRIX[0], "--certs", pki.root, "--report", tmp_path / "no" / "r.html")
    assert missing.code == ExitCode.USAGE and "does not exist: create it" in missing.err


def test_server_record_needs_a_report_and_an_existing_file(tmp_path: Path) -> None:
    done = cli("call", "--url", "https://localhost:9/x", "--identity", "none", "--server-record", tmp_path / "r")
    assert done.code == ExitCode.USAGE and "--server-record goes with --report" in done.err
    report = ("--report", tmp_path / "r.html")
    done = cli(
        "call", "--url", "https://localhost:9/x", "--identity", "none", "--server-record", tmp_path / "r", *report
    )
    assert done.code == ExitCode.USAGE and "no such file: give the file of `mtls-lab serve --record FILE`" in done.err
    assert not (tmp_path / "r.html").exists()


def test_every_outcome_has_a_headline() -> None:
    assert set(views._HEADLINES) == set(Outcome)


def test_a_call_that_never_connected_draws_no_ladder_and_says_why(pki: LabPaths, tmp_path: Path) -> None:
    record = tmp_path / "calls.jsonl"
    record.write_text("")
    path = tmp_path / "refused.html"
    url = f"https://localhost:{free_port()}/x"  # nothing listens there
    done = cli("call", "--url", url, "--identity", "none", "--certs", pki.root, "--retries", "0",
               "--report", path, "--server-record", record)  # fmt: skip
    assert done.code == ExitCode.CONNECTION and f"report written to {path}" in done.err
    html = unescape(path.read_text())
    assert "Connection failed (connect), no TLS alert" in html
    assert "no TLS message was exchanged (no connection)" in html and '<g class="msg' not in html
    assert "The caller made no TCP connection, so the server cannot have recorded this attempt." in html


# --- the server's side: matched by the caller's local port ----------------------------------------------


def _record(path: Path) -> list[dict[str, Any]]:
    return entries(path)


def test_the_server_side_is_the_entry_from_the_callers_port(reports: dict[str, Path]) -> None:
    html = unescape(reports["call-tls-only"].read_text())
    record = _record(reports["call-tls-only"].parent / "tls.jsonl")
    ours = [e for e in record if e.get("kind", "request") == "request" and e["method"] == "POST"]
    assert len(ours) == 1  # the probe's GETs are in the same record: only the call's POST is this attempt's
    port = server_side.peer_port(ours[0])
    assert f"entries from the caller's port {port}" in html
    assert "HTTP 403 no_client_certificate" in html and html.count('class="entry request"') == 1
    assert html.count('class="entry connection"') == 1  # the POST's connection, not the probe's


def test_the_probe_report_shows_the_servers_entry_of_its_first_connection(reports: dict[str, Path]) -> None:
    html = unescape(reports["probe-tls-only"].read_text())
    assert html.count('class="entry request"') == 1
    assert "GET /custom-action" in html and "HTTP 403 no_client_certificate" in html


def test_the_probe_report_draws_the_probes_own_first_connection(reports: dict[str, Path]) -> None:
    """No second connection to draw it: the server saw the probe's three GETs only, and the report is the first."""
    html = unescape(reports["probe-tls-only"].read_text())
    record = _record(reports["probe-tls-only"].parent / "tls.jsonl")
    gets = [e for e in record if e.get("kind", "request") == "request" and e["path"] == "/custom-action"]
    gets = [e for e in gets if e["method"] == "GET"]
    assert len(gets) == 3  # AJO's defaults, then TLS 1.2 and TLS 1.3 pinned: nothing more
    assert f"entries from the caller's port {server_side.peer_port(gets[0])}" in html
    assert f"entries from the caller's port {server_side.peer_port(gets[-1])}" not in html


def test_a_failed_token_call_is_reported_as_such(reports: dict[str, Path]) -> None:
    """The action's endpoint is never called: no ladder of it, no server entry, the token call's facts instead."""
    html = unescape(reports["matrix"].read_text())
    anchor = scenario_anchor("mtls/tls1.3/adobe/java/custom-auth/authorizes-both/token-endpoint-mtls")
    detail = html.split(f'id="{anchor}"', 1)[1].split("</details>", 1)[0]
    assert "no call to the action's endpoint: the custom authorization's token call failed first" in detail
    assert (
        "The custom authorization's token call" in detail and "failed: the action's endpoint was not called" in detail
    )
    assert "The action's endpoint was not called (the token call failed first)" in detail
    assert "/_lab/oauth2/token" in detail and 'class="entry' not in detail


def test_a_server_the_caller_does_not_trust_is_the_first_thing_said(reports: dict[str, Path]) -> None:
    html = unescape(reports["probe-untrusted"].read_text())
    assert "AJO will not trust this endpoint&#39;s certificate" in reports["probe-untrusted"].read_text()
    assert "the caller does NOT trust this chain" in html
    assert (
        '<g class="msg alert" data-direction="caller-&gt;server" data-type="Alert">'
        in reports["probe-untrusted"].read_text()
    )
    assert "Alert unknown_ca (fatal)" in html  # the caller's own alert, drawn towards the server


def test_a_rejected_handshake_is_shown_from_the_servers_side_too(reports: dict[str, Path]) -> None:
    """The server's connection entry (record version 2) beside what the caller saw: the same alert, both ends."""
    html = unescape(reports["call-mtls-other-ca"].read_text())
    assert html.count('class="entry connection"') == 1 and 'class="entry request"' not in html
    assert "empty Certificate: asked, and the client sent none" in html
    assert "certificate_required (fatal), after the client's Finished" in html  # the server's words
    assert "certificate_required, after the handshake (on the caller's first read)" in html  # the caller's


def test_entries_match_by_port_and_time() -> None:
    now = dt.datetime.now(dt.UTC)
    old = (now - dt.timedelta(hours=1)).isoformat()
    entries = [
        {"time": now.isoformat(), "client": "127.0.0.1:5000", "method": "GET", "path": "/a", "status": 200},
        {"time": now.isoformat(), "client": "[::1]:5001", "method": "GET", "path": "/b", "status": 200},
        {"time": old, "client": "127.0.0.1:5000", "method": "GET", "path": "/old", "status": 200},
    ]
    side = server_side.for_attempt(entries, 5000, now - dt.timedelta(seconds=1), "test")
    assert [f.value for e in side.entries for f in e.facts if f.label == "request"] == ["GET /a"]
    assert server_side.for_attempt(entries, 5002, None, "test").entries == []
    assert [server_side.peer_port({"peer": p}) for p in ("[::1]:7", {"port": 8}, ["h", 9], "junk")] == [7, 8, 9, None]


def test_connection_entries_are_read_through_the_seam() -> None:
    """Record version 2's connection entries (docs/reference/record.md): the empty Certificate and the alert."""
    entry = {
        "record_version": 2,
        "kind": "connection",
        "connection_id": "5f3a-1",
        "time": dt.datetime.now(dt.UTC).isoformat(),
        "client": "127.0.0.1:6000",
        "sni": "localhost",
        "versions_offered": ["TLSv1.3", "TLSv1.2"],
        "tls_version": "TLSv1.3",
        "certificate_requested": True,
        "ca_names_advertised": ["CN=MTLS LAB impostor root (unrelated CA)"],
        "client_certificate": "empty",
        "client_chain": [],
        "ssl_client_verify": "NONE",
        "outcome": "rejected",
        "alert_sent": {"name": "certificate_required", "level": "fatal", "after_client_finished": True},
        "alert_received": None,
        "a_field_added_later": "shown too",
    }
    side = server_side.for_attempt([entry], 6000, None, "test")
    assert side.has_connection_entries and side.note == ""
    facts = {f.label: f for f in side.entries[0].facts}
    assert facts["client certificate"].value == "empty Certificate: asked, and the client sent none"
    assert facts["alert sent"].value == "certificate_required (fatal), after the client's Finished"
    assert facts["alert sent"].tone == facts["outcome"].tone == "bad"
    assert facts["SNI"].value == "localhost" and facts["versions offered"].value == "TLSv1.3; TLSv1.2"
    assert facts["a field added later"].value == "shown too" and "alert received from the client" not in facts
    presented = {**entry, "client_certificate": "presented", "client_chain": [{"subject": "CN=x", "issuer": "CN=y"}]}
    shown = {f.label: f.value for f in server_side.connection_facts(presented)}
    assert shown["client certificate"] == "presented: CN=x (issued by CN=y)"
    none = server_side.for_attempt([entry], 6001, None, "test")
    assert none.note.endswith("no connection of the caller's reached it.")  # a version 2 record: no v1 excuse


@pytest.mark.parametrize(
    "scenario",
    [
        "mtls/tls1.3/adobe/java/advertises-other-ca",
        "mtls/tls1.3/adobe-rotated/java/pinned-leaf",
        "mtls/tls1.3/impostor/openssl",
    ],
)
def test_a_scenarios_reproduce_commands_reproduce_it(scenario: str, pki: LabPaths, tmp_path: Path) -> None:
    """The serve and call commands a matrix report prints give the scenario's verdict, run as they are."""
    from mtls_lab.matrix.scenarios import SCENARIOS

    chosen = next(s for s in SCENARIOS if s.id == scenario)
    commands = scenario_commands(chosen)
    assert commands[0] == f"mtls-lab matrix --only {scenario} --trace" and commands[1].endswith("&")
    outcomes = Scratch(tmp_path / "scratch", pki.root, REPO).run_block([commands[1], commands[2] + " --json"])
    verdict = json.loads(outcomes[-1].output)
    actual = (
        "accepted"
        if verdict["outcome"] == "accepted"
        else f"alert {verdict['alert']}"
        if verdict["alert"]
        else f"{verdict['status']} {verdict['server_reason']}"
    )
    assert (actual, verdict["client_cert_sent"]) == (chosen.expect, chosen.sent), outcomes[0].output


# --- in the browser ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pages(browser: Browser, reports: dict[str, Path]) -> Iterator[dict[str, Page]]:
    opened = {name: browser.open(path) for name, path in reports.items()}
    yield opened
    for page in opened.values():
        page.close()


def visible_text(page: Page, selector: str) -> str:
    return str(page.evaluate(f"document.querySelector({json.dumps(selector)}).innerText"))


def in_first_screenful(page: Page, selector: str) -> bool:
    return bool(
        page.evaluate(
            f"""(() => {{ const e = document.querySelector({json.dumps(selector)});
            const r = e.getBoundingClientRect();
            return e.checkVisibility() && r.height > 0 && r.top >= 0 && r.bottom <= window.innerHeight; }})()"""
        )
    )


def test_reports_render_offline_with_no_console_error_and_no_request(
    pages: dict[str, Page], reports: dict[str, Path], tmp_path: Path
) -> None:
    for name, page in pages.items():
        page.settle()
        assert page.errors == [], name
        assert page.requests == [reports[name].resolve().as_uri()], name  # the file itself, nothing else
        shot = page.screenshot(tmp_path / f"{name}.png")
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000, name


@pytest.mark.parametrize(
    ("name", "headline", "cause", "fix"),
    [
        (
            "probe-tls-only",
            "TLS-only endpoint: AJO's call will carry no client certificate",
            "the endpoint never asks for one",
            "require a client certificate (mTLS-only, as Adobe asks)",
        ),
        (
            "probe-mtls-other-ca",
            "mTLS-only endpoint that names only other CAs (MTLS LAB impostor root",
            "AJO omits its certificate",
            "so that its names include DigiCert Global Root G2",
        ),
        (
            "call-mtls-other-ca",
            "Rejected in TLS: alert certificate_required, after the handshake",
            "this endpoint advertised: CN=MTLS LAB impostor root",
            "trust and advertise Adobe's CA chain",
        ),
        ("call-tls-only", "Rejected over HTTP: 403 no_client_certificate", "never asked", "enable mTLS"),
    ],
)
def test_the_first_screenful_explains_the_failure(
    pages: dict[str, Page], name: str, headline: str, cause: str, fix: str
) -> None:
    page = pages[name]
    for selector in ("#verdict .headline", "#verdict .cause", "#verdict .fix"):
        assert in_first_screenful(page, selector), f"{name}: {selector} is not in the first screenful"
    assert headline in visible_text(page, "#verdict .headline")
    assert cause in visible_text(page, "#verdict .cause")
    assert fix in visible_text(page, "#verdict .fix")


def arrows(page: Page, root: str = "#ladder") -> list[dict[str, Any]]:
    """The ladder's arrows as drawn: type, direction from the drawn geometry, style, label, marker."""
    return list(
        page.evaluate(
            f"""Array.from(document.querySelectorAll({json.dumps(root + " g.msg")})).map(g => {{
              const line = g.querySelector("line"), box = line.getBoundingClientRect();
              const marker = line.getAttribute("marker-end").slice(5, -1);
              return {{type: g.dataset.type, style: g.classList[1], text: g.textContent.trim(),
                       rightwards: line.x2.baseVal.value > line.x1.baseVal.value, width: box.width, top: box.top,
                       head: !!document.getElementById(marker), visible: g.checkVisibility()}}; }})"""
        )
    )


def test_the_ladder_draws_the_messages_the_caller_observed(pages: dict[str, Page]) -> None:
    drawn = arrows(pages["call-mtls-other-ca"])
    assert all(a["width"] > 500 and a["head"] and a["visible"] for a in drawn)
    seen = [(a["type"], "->" if a["rightwards"] else "<-") for a in drawn]
    assert seen[:4] == [
        ("ClientHello", "->"),
        ("ServerHello", "<-"),
        ("EncryptedExtensions", "<-"),
        ("CertificateRequest", "<-"),
    ]
    assert seen[-1] == ("Alert", "<-")
    request = next(a for a in drawn if a["type"] == "CertificateRequest")
    assert "CA name: CN=MTLS LAB impostor root (unrelated CA)" in request["text"]
    empty = next(a for a in drawn if a["type"] == "Certificate" and a["rightwards"])
    assert empty["style"] == "empty" and "Certificate: EMPTY" in empty["text"]
    alert = drawn[-1]
    assert alert["style"] == "alert" and "Alert certificate_required (fatal)" in alert["text"]
    assert "after the caller's Finished" in alert["text"]
    marker = pages["call-mtls-other-ca"].evaluate(
        "(() => { const m = document.querySelector('#ladder g.marker'); "
        "return [m.textContent, m.getBoundingClientRect().top]; })()"
    )
    assert "the caller's Finished is sent" in marker[0]
    assert marker[1] < alert["top"]  # drawn between the caller's Finished and the alert


def test_a_tls12_rejection_comes_after_the_callers_finished_was_sent(pages: dict[str, Page]) -> None:
    page = pages["matrix"]
    page.evaluate("document.getElementById('s-mtls_tls1_2_adobe_java_advertises-other-ca').open = true")
    root = "#s-mtls_tls1_2_adobe_java_advertises-other-ca svg.ladder"
    drawn = arrows(page, root)
    assert drawn[-1]["type"] == "Alert" and not drawn[-1]["rightwards"]
    assert (
        "handshake_failure" in drawn[-1]["text"]
        and "the caller had sent its whole flight, Finished included" in drawn[-1]["text"]
    )
    assert all(a["visible"] for a in drawn)


def test_lab_stand_ins_are_marked_as_not_real(pages: dict[str, Page]) -> None:
    cards = pages["call-mtls-other-ca"].evaluate("Array.from(document.querySelectorAll('.cert')).map(c => c.innerText)")
    adobe = next(c for c in cards if "ajo-journeys.aep-mtls.adobe.com" in c)
    assert "LAB STAND-IN, not a real certificate" in adobe
    assert all("LAB STAND-IN" in c for c in cards)  # every certificate of this run is the lab's
    hostile = pages["hostile"].evaluate("Array.from(document.querySelectorAll('.cert')).map(c => c.innerText)")
    assert hostile and not any("LAB STAND-IN" in c for c in hostile)  # a foreign certificate is not marked


def test_hostile_input_is_shown_as_text_and_never_runs(pages: dict[str, Page]) -> None:
    page = pages["hostile"]
    assert page.evaluate("typeof window.__pwned") == "undefined"
    assert page.evaluate("document.querySelectorAll('script, img, iframe').length") == 0
    assert page.evaluate("Array.from(document.querySelectorAll('b')).some(b => b.textContent === 'not bold')") is False
    text = str(page.evaluate("document.body.innerText"))
    assert "CN=\\<script\\>window.__pwned=1\\</script\\>" in text  # the subject, in RFC 4514's escapes
    assert "<script>window.__pwned=3</script><b>not bold</b>" in text
    page.evaluate("document.querySelectorAll('details').forEach(d => d.open = true)")
    assert "</pre><script>window.__pwned=7</script>" in str(page.evaluate("document.body.innerText"))
    assert page.errors == []


SHOWN_ROWS = "Array.from(document.querySelectorAll('#matrix tbody tr')).filter(r => r.checkVisibility())"


def test_the_matrix_filters_by_mode_identity_and_outcome(pages: dict[str, Page]) -> None:
    page = pages["matrix"]

    def choose(control: str, value: str) -> list[str]:
        page.evaluate(
            f"""(() => {{ const c = document.getElementById("filter-{control}");
            if (c.type === "checkbox") c.checked = {json.dumps(value == "on")}; else c.value = {json.dumps(value)};
            c.dispatchEvent(new Event(c.type === "search" ? "input" : "change")); }})()"""
        )
        return sorted(page.evaluate(SHOWN_ROWS + ".map(r => r.dataset.scenario)"))

    mtls = [s for s in MATRIX if s.startswith("mtls/")]
    assert choose("mode", "") == sorted(MATRIX)
    assert choose("mode", "mtls") == sorted(mtls)
    assert choose("outcome", "tls_alert") == sorted(s for s in mtls if s != "mtls/tls1.3/adobe/java")
    assert choose("identity", "impostor") == ["mtls/tls1.3/impostor/openssl"]
    assert visible_text(page, "#shown") == "1"
    for control in ("mode", "outcome", "identity"):
        choose(control, "")
    assert choose("mismatches", "on") == []  # every verdict is as expected
    assert choose("mismatches", "off") == sorted(MATRIX)
    assert choose("text", "tls1.2") == [s for s in MATRIX if "tls1.2" in s]
    assert page.errors == []


def test_the_demo_report_tells_the_story_with_both_sides_of_each_step(pages: dict[str, Page]) -> None:
    page = pages["demo"]
    assert visible_text(page, "#verdict .headline") == f"{len(STEPS)} scenarios: {len(STEPS)} as expected, 0 mismatched"
    rows = page.evaluate("Array.from(document.querySelectorAll('#matrix tbody tr')).map(r => r.innerText)")
    assert len(rows) == len(STEPS) and "The server team enabled TLS only" in rows[0]
    accepted = "#" + scenario_anchor("mtls/tlsauto/adobe/java")
    page.evaluate(f"document.querySelector('{accepted}').open = true")
    server = visible_text(page, f"{accepted} .server-side")
    assert "answered\tHTTP 200" in server and "CN=ajo-journeys.aep-mtls.adobe.com" in server
    caller = visible_text(page, f"{accepted} .caller-side")
    port = caller.split("from local port\t")[1].split("\n")[0]
    assert f"entries from the caller's port {port}" in server  # the same connection, seen from both ends


# --- the harness can fail --------------------------------------------------------------------------------


def test_the_browser_checks_catch_errors_requests_and_scripts(browser: Browser, tmp_path: Path) -> None:
    bad = tmp_path / "bad.html"
    bad.write_text(
        '<!doctype html><title>bad</title><img src="http://127.0.0.1:9/x.png">'
        "<script>window.__pwned = 1; console.error('boom');</script>"
    )
    page = browser.open(bad)
    assert page.evaluate("window.__pwned") == 1  # a script in markup runs: escaping is what stops it
    assert any("boom" in e for e in page.errors)
    assert "http://127.0.0.1:9/x.png" in page.requests
    page.close()


def test_the_report_policy_blocks_a_script_that_got_in(browser: Browser, tmp_path: Path) -> None:
    """Second barrier: had a script slipped past the escaping, the report's policy would not run it."""
    policy = render.csp("body { color: black }", None)
    page_file = tmp_path / "injected.html"
    page_file.write_text(
        f'<!doctype html><meta http-equiv="Content-Security-Policy" content="{policy}">'
        "<title>x</title><p>text</p><script>window.__pwned = 1</script>"
    )
    page = browser.open(page_file)
    assert page.evaluate("typeof window.__pwned") == "undefined"
    assert any("Content Security Policy" in e for e in page.errors)
    page.close()
