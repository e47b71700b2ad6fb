"""``mtls-lab demo``: the community question's story told with live calls, step by step."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass

from mtls_lab.caller.ladder import render_ladder
from mtls_lab.caller.tls import Chain
from mtls_lab.certs.layout import LabPaths
from mtls_lab.matrix.runner import Observe, Result, run, server_config, server_label
from mtls_lab.matrix.scenarios import SCENARIOS, Scenario
from mtls_lab.server.config import load


@dataclass(frozen=True)
class Step:
    chapter: str
    story: str
    scenario_id: str

    @property
    def scenario(self) -> Scenario:
        return next(s for s in SCENARIOS if s.id == self.scenario_id)


STEPS = [
    Step(
        "1. The endpoint as the customer configured it",
        "The server team enabled TLS only, and the app checks the caller's certificate. AJO's call arrives "
        "without one: the TLS layer never asked, and AJO sends its certificate only when asked.",
        "tls/tls1.3/adobe/java",
    ),
    Step(
        "1. The endpoint as the customer configured it",
        "Next attempt: the server asks for a certificate, optionally, but names only the company's own CA. "
        "A Java client such as AJO finds none of its issuers among the names and sends nothing.",
        "mixed/tls1.3/adobe/java/trusts-other-ca",
    ),
    Step(
        "1. The endpoint as the customer configured it",
        "The same names on an mTLS-only endpoint: no 403 this time, the handshake itself fails.",
        "mtls/tls1.3/adobe/java/advertises-other-ca",
    ),
    Step(
        "1. The endpoint as the customer configured it",
        "Often the 403 does not come from the app at all: a gateway (AWS API Gateway, Cloudflare) terminates "
        "TLS in front of a healthy app, and its truststore names the wrong CA. AJO sends no certificate and the "
        "gateway answers 403 Forbidden before the app sees anything.",
        "mtls/tls1.3/adobe/java/advertises-other-ca/gateway-style",
    ),
    Step(
        "2. What Adobe's advice changes",
        "mTLS only, trusting (and so advertising) Adobe's root. AJO sends its certificate; the call is accepted.",
        "mtls/tlsauto/adobe/java",
    ),
    Step(
        "3. The traps next to it: the intermediate",
        "The leaf arrives without its intermediate, and the endpoint trusts only the root: no chain.",
        "mtls/tls1.3/adobe-leaf/java/advertises-none",
    ),
    Step(
        "3. The traps next to it: pinning",
        "The endpoint pinned last year's leaf. Adobe rotates its certificate every year without notice.",
        "mtls/tls1.3/adobe-rotated/java/pinned-leaf",
    ),
    Step(
        "3. The traps next to it: pinning",
        "The same rotated certificate against an endpoint that trusts the root instead: accepted.",
        "mtls/tls1.3/adobe-rotated/java",
    ),
    Step(
        "3. The traps next to it: the CA migration",
        "Adobe moves to DigiCert Assured ID. An endpoint that trusts only today's root fails the new certificate.",
        "mtls/tls1.3/adobe-next/java",
    ),
    Step(
        "3. The traps next to it: the CA migration",
        "Trust both roots before the switch, and the new certificate is accepted.",
        "mtls/tls1.3/adobe-next/java/trusts-both-roots",
    ),
    Step(
        "3. The traps next to it: the CA migration",
        "Or automate it, as Adobe asks: `mtls-lab trust-sync` reads Adobe's public-certificate API (here the lab's "
        "`mtls-lab adobe-api`, in its migration phase) and adds the new hierarchy's root and intermediate to the "
        "trust store, keeping today's. The new certificate is accepted.",
        "mtls/tls1.3/adobe-next/java/trust-sync-migration",
    ),
    Step(
        "3. The traps next to it: TLS versions",
        "The community question asked whether TLS 1.2 must go. No: a TLS 1.2-only endpoint still works,"
        " AJO falls back.",
        "mtls/tlsauto/adobe/java/server-max-tls1.2",
    ),
    Step(
        "3. The traps next to it: TLS versions",
        "Versions matter only when they do not overlap: a TLS 1.3-only client meets a TLS 1.2-only server.",
        "mtls/tls1.3/adobe/java/server-max-tls1.2",
    ),
]


def run_demo(
    pki: LabPaths, trace: bool = False, colour: bool = False, observe: Observe | None = None
) -> tuple[str, bool]:
    """The story's text, and whether every step behaved as the story says (``observe``: see ``runner.run``)."""
    results = run([step.scenario for step in STEPS], pki, observe=observe)
    lines = [
        "ajo-mtls-lab demo: why does AJO's custom action get HTTP 403 from an mTLS endpoint?",
        "(the caller models AJO's Java client; every call below is live, on 127.0.0.1)",
    ]
    chapter = ""
    for step, result in zip(STEPS, results, strict=True):
        if step.chapter != chapter:
            chapter = step.chapter
            lines += ["", chapter, "=" * len(chapter)]
        lines += _step(step, result, pki)
        if trace:
            lines += ["", render_ladder(result.verdict, server_label(step.scenario), colour=colour)]
    good = all(r.match for r in results)
    lines += [
        "",
        "Every step behaved as the story says." if good else "SOME STEPS DID NOT BEHAVE AS THE STORY SAYS.",
        "Next: `mtls-lab matrix` shows every combination; `mtls-lab call --help` replays your own action.",
    ]
    return "\n".join(lines), good


def _step(step: Step, result: Result, pki: LabPaths) -> list[str]:
    server = load(server_config(step.scenario, pki))
    cfg = server.config
    advertised = "; ".join(n.split(",")[0] for n in server.advertised) or "none"
    trusted = "; ".join(n.split(",")[0] for n in server.trusted)
    verdict = result.verdict
    status = "as the story says" if result.match else f"UNEXPECTED (expected {step.scenario.expect})"
    return [
        "",
        *textwrap.wrap(step.story, 100),
        f"  server: mode {cfg.mode.value}, {_versions(cfg.tls_min.value, cfg.tls_max.value)}, trusts {trusted}, "
        f"advertises {advertised}" + (", pins the current leaf" if server.pins else ""),
        f"  caller: identity {_who(step.scenario)}, "
        f"TLS {step.scenario.tls.value if step.scenario.tls else 'auto'}, Java client model",
        f"  verdict: {result.actual} over {verdict.tls_version or 'no TLS version'}, client certificate "
        f"{'sent' if verdict.client_cert_sent else 'not sent'}, "
        f"jo_status_code {verdict.jo_status_code}  [{status}]",
        *textwrap.wrap(verdict.explanation, 100, initial_indent="  why: ", subsequent_indent="       "),
        *textwrap.wrap(verdict.fix, 100, initial_indent="  fix: ", subsequent_indent="       "),
    ]


def _versions(low: str, high: str) -> str:
    return f"TLS {low} only" if low == high else f"TLS {low}-{high}"


def _who(scenario: Scenario) -> str:
    who = scenario.identity.value if scenario.identity else "none"
    return who + (" (leaf only)" if scenario.chain is Chain.LEAF else "")
