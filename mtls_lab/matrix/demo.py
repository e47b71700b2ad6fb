"""``mtls-lab demo``: the community question's story told with live calls, step by step."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass

from mtls_lab.caller import senders
from mtls_lab.caller.ladder import render_ladder
from mtls_lab.caller.senders import PROFILES, Sender
from mtls_lab.caller.tls import Chain
from mtls_lab.certs.layout import LabPaths
from mtls_lab.matrix.runner import Observe, Result, run, server_config, server_label
from mtls_lab.matrix.scenarios import SCENARIOS, Auth, Scenario
from mtls_lab.server.loaded import load
from mtls_lab.server.settings import Authorize, Mode


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
        "The endpoint pinned the leaf it saw. Adobe reissues its certificate 60 days before it expires (a "
        "13-month lifetime today, shortening toward 47 days), without notice: the successor is refused.",
        "mtls/tls1.3/adobe-rotated/java/pinned-leaf",
    ),
    Step(
        "3. The traps next to it: pinning",
        "The same successor against an endpoint that trusts the root instead: accepted.",
        "mtls/tls1.3/adobe-rotated/java",
    ),
    Step(
        "3. The traps next to it: the CA migration",
        "Adobe moves to DigiCert Assured ID. An endpoint that trusts only today's root fails the new certificate.",
        "mtls/tls1.3/adobe-next/java",
    ),
    Step(
        "3. The traps next to it: the CA migration",
        "Adobe asks for a one-time change, as soon as possible: add the new root and intermediate next to today's "
        "chain. The new certificate is accepted from its first call.",
        "mtls/tls1.3/adobe-next/java/trusts-both-roots",
    ),
    Step(
        "3. The traps next to it: the CA migration",
        "Automation alone is one step late: the public-certificate API lists the new certificate only once Adobe "
        "uses it, so a daily `mtls-lab trust-sync --prune` (here against the lab's `mtls-lab adobe-api`) has not "
        "added its CAs yet when the first call with it arrives.",
        "mtls/tls1.3/adobe-next/java/trust-sync-rotated",
    ),
    Step(
        "3. The traps next to it: the CA migration",
        "Stage the new hierarchy once (`trust-sync --stage next-hierarchy`) and let the schedule run: the first "
        "call with the new certificate is accepted, and --prune keeps what was staged.",
        "mtls/tls1.3/adobe-next/java/trust-sync-rotated/staged",
    ),
    Step(
        "3. The traps next to it: the CA migration",
        "While connections move one by one, both hierarchies are in use: the store trust-sync keeps still accepts "
        "today's certificate.",
        "mtls/tls1.3/adobe-rotated/java/trust-sync-transition",
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
    Step(
        "3. The traps next to it: TLS versions",
        "One case does depend on the version, and it reads like the question: mTLS is on, TLS 1.2 and 1.3 are on, "
        "and AJO gets 403. The endpoint asks for the certificate for the action's path only (Apache's SSLVerifyClient "
        "inside <Location>), after the handshake: on TLS 1.3 that is post-handshake authentication, which a Java "
        "client such as AJO's (a model) does not offer, and Apache answers 403.",
        "mtls/tlsauto/adobe/java/asks-per-path",
    ),
    Step(
        "3. The traps next to it: TLS versions",
        "The same endpoint on TLS 1.2 renegotiates, and the Java client answers: accepted. Limiting the host to TLS "
        "1.2 is the weaker fix; ask at the virtual host, in the handshake, for every path.",
        "mtls/tls1.2/adobe/java/asks-per-path",
    ),
    Step(
        "4. Authentication next to mTLS: the token call",
        "The action also uses custom authorization: AJO first calls a token endpoint, then the action. The token "
        "endpoint requires mTLS too, but AJO makes the token call without its certificate (a model; Adobe: OAuth "
        "token endpoints must not use mTLS). The token call fails, and the action is never called.",
        "mtls/tls1.3/adobe/java/custom-auth/authorizes-both/token-endpoint-mtls",
    ),
    Step(
        "4. Authentication next to mTLS: the token call",
        "The same action with a token endpoint that does not require a certificate: token, then an accepted call.",
        "mtls/tls1.3/adobe/java/custom-auth/authorizes-both",
    ),
    Step(
        "4. Authentication next to mTLS: certificate-based authentication",
        "The community question's title says 'certificate based authentication': that is also a separate AJO "
        "feature. With subType certificateCredential, AJO signs a JWT with Adobe's certificate and trades it for a "
        "token at the customer's identity provider, which holds Adobe's registered leaf. Here with an mTLS-only "
        "endpoint: Adobe's certificate is used twice, once to sign, once in the handshake.",
        "mtls/tls1.3/adobe/java/cert-auth/authorizes-both",
    ),
    Step(
        "4. Authentication next to mTLS: certificate-based authentication",
        "Adobe reissued its certificate; the identity provider still holds only the previous leaf. Unlike mTLS, where "
        "trusting the root survives a rotation, here the leaf itself is registered.",
        "tls/tls1.3/adobe-rotated/java/cert-auth/authorizes-token",
    ),
    Step(
        "4. Authentication next to mTLS: certificate-based authentication",
        "Register the new leaf during the overlap (`mtls-lab idp-leaves` writes what the API lists): accepted.",
        "tls/tls1.3/adobe-rotated/java/cert-auth/authorizes-token/idp-holds-adobe+adobe-rotated",
    ),
    Step(
        "4. Authentication next to mTLS: certificate-based authentication",
        "The assertion's aud is not the identity provider's token endpoint (another tenant's URL).",
        "tls/tls1.3/adobe/java/cert-auth/authorizes-token/wrong-audience",
    ),
    Step(
        "5. Can AJO send my own certificate? No",
        "The app authorizes callers by 'its own' certificate, the company's. Its TLS layer trusts Adobe's chain too, "
        "so the handshake passes, but AJO presents only Adobe's certificate, and the app answers 403.",
        "mtls/tls1.3/adobe/java/trusts-adobe-and-company-ca/not-on-allow-list",
    ),
    Step(
        "5. Can AJO send my own certificate? No",
        "Fix 1: allow Adobe's identity on that route, by its SAN (matched before the CN, RFC 2818).",
        "mtls/tls1.3/adobe/java/trusts-adobe-and-company-ca/allows-adobe-san",
    ),
    Step(
        "5. Can AJO send my own certificate? No",
        "Fix 2: authenticate AJO another way on that route: here certificate-based authentication, the route "
        "authorizing the token instead of the certificate's name.",
        "mtls/tls1.3/adobe/java/trusts-adobe-and-company-ca/not-on-allow-list/cert-auth/authorizes-token",
    ),
]


def _as(sender: Sender, *steps: tuple[str, str]) -> list[Step]:
    chapter = f"6. When {PROFILES[sender].label} calls"
    return [Step(chapter, story, scenario_id) for story, scenario_id in steps]


# what differs when another Adobe sender calls (``demo --sender``): the matrix's rows of that sender
SENDER_STEPS: dict[Sender, list[Step]] = {
    Sender.AJO_CUSTOM_ACTION: [],
    Sender.HTTP_DESTINATION: _as(
        Sender.HTTP_DESTINATION,
        (
            "An HTTP API destination exports profiles to an mTLS-only endpoint that trusts Adobe's root: accepted, "
            "as AJO's call is.",
            "mtls/tls1.3/adobe/java/sender-http-destination",
        ),
        (
            "An endpoint that asks for the certificate optionally accepts the export too, yet Adobe says the "
            "destination's endpoint 'must have TLS disabled and only mTLS enabled': `mtls-lab probe URL --sender "
            "http-destination` names it a sender PROBLEM.",
            "mixed/tls1.3/adobe/java/sender-http-destination",
        ),
        (
            "What the rule keeps out: on that endpoint a caller without any certificate gets past TLS, and only the "
            "app's 403 stops it.",
            "mixed/tls1.3/none/java/sender-http-destination",
        ),
        (
            "The mTLS-only endpoint now answers in 2.2 s. Adobe says the destination's endpoint 'must respond within 2 "
            "seconds': the export times out (and is stored and retried twice, Adobe says).",
            "mtls/tls1.3/adobe/java/answers-slowly/sender-http-destination",
        ),
        (
            "The same slow endpoint called by an AJO custom action: accepted, well inside the journey's timeout.",
            "mtls/tls1.3/adobe/java/answers-slowly",
        ),
    ),
    Sender.AJO_SMS: _as(
        Sender.AJO_SMS,
        (
            "A custom SMS provider with the configuration's 'mTLS support' on: its certificate goes out, accepted.",
            "mtls/tls1.3/adobe/java/sender-ajo-sms",
        ),
        (
            "The same provider with 'mTLS support' off: unlike a custom action, nothing detects the mTLS endpoint; "
            "no certificate goes out, and the endpoint refuses the handshake.",
            "mtls/tls1.3/none/java/sender-ajo-sms",
        ),
    ),
    Sender.IO_EVENTS: _as(
        Sender.IO_EVENTS,
        (
            "An I/O Events webhook that pinned the certificate it saw: accepted, for now.",
            "mtls/tls1.3/adobe/java/pinned-leaf/sender-io-events",
        ),
        (
            "Adobe generates that certificate with a 13-month expiration and reissues it 60 days before: the "
            "successor is refused by the pin.",
            "mtls/tls1.3/adobe-rotated/java/pinned-leaf/sender-io-events",
        ),
        (
            "Trusting the chain instead of the leaf: the reissued certificate is accepted.",
            "mtls/tls1.3/adobe-rotated/java/sender-io-events",
        ),
    ),
    Sender.EVENT_FORWARDING: _as(
        Sender.EVENT_FORWARDING,
        (
            "Event Forwarding calls an mTLS-only endpoint: accepted. Adobe documents little of this sender, so the "
            "caller is AJO's model.",
            "mtls/tls1.3/adobe/java/sender-event-forwarding",
        ),
        (
            "The migration page names Event Forwarding among the senders: an endpoint that trusts only today's root "
            "refuses the next hierarchy's certificate, as it does AJO's.",
            "mtls/tls1.3/adobe-next/java/sender-event-forwarding",
        ),
    ),
}


def steps_for(sender: Sender | None) -> list[Step]:
    """The demo's steps: the community question's story, then what differs for ``sender``."""
    return STEPS + (SENDER_STEPS[sender] if sender else [])


def run_demo(
    pki: LabPaths,
    trace: bool = False,
    colour: bool = False,
    observe: Observe | None = None,
    sender: Sender | None = None,
) -> tuple[str, bool]:
    """The story's text, and whether every step behaved as the story says (``observe``: see ``runner.run``).

    ``sender``: also tell what differs when that Adobe sender calls, with its profile (caller/senders.py)."""
    steps = steps_for(sender)
    results = run([step.scenario for step in steps], pki, observe=observe)
    lines = [
        "ajo-mtls-lab demo: why does AJO's custom action get HTTP 403 from an mTLS endpoint?",
        "(the caller models AJO's Java client; every call below is live, on 127.0.0.1)",
    ]
    if sender is not None:
        lines += ["", "The sender, as Adobe documents it:", *PROFILES[sender].lines()]
    chapter = ""
    for step, result in zip(steps, results, strict=True):
        if step.chapter != chapter:
            chapter = step.chapter
            lines += ["", chapter, "=" * len(chapter)]
        lines += _step(step, result, pki)
        if step.scenario.sender is not Sender.AJO_CUSTOM_ACTION:
            chosen = PROFILES[step.scenario.sender]
            lines += [f"  sender note: {note}" for note in senders.notes(chosen, result.verdict)]
            lines += [f"  sender PROBLEM: {problem}" for problem in _optional_endpoint(chosen, step.scenario)]
        if trace:
            lines += ["", render_ladder(result.verdict, server_label(step.scenario), colour=colour)]
    good = all(r.match for r in results)
    lines += [
        "",
        "Every step behaved as the story says." if good else "SOME STEPS DID NOT BEHAVE AS THE STORY SAYS.",
        "Next: `mtls-lab matrix` shows every combination; `mtls-lab call --help` replays your own action.",
    ]
    return "\n".join(lines), good


def _optional_endpoint(chosen: senders.SenderProfile, scenario: Scenario) -> list[str]:
    """What one accepted call cannot show and the lab knows of its own server: the certificate is optional there,
    where the sender requires an mTLS-only endpoint (on a real endpoint, ``probe --sender`` finds it)."""
    if not (chosen.mtls_only and scenario.mode is Mode.MIXED):
        return []
    page = senders.HTTP_DESTINATION if chosen.sender is Sender.HTTP_DESTINATION else senders.CUSTOM_ACTION
    return [
        f"{chosen.label}: this endpoint asks for the certificate optionally (serve --mode mixed), and Adobe requires "
        f"an mTLS-only endpoint ({page}): require it in the handshake"
    ]


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
        f"advertises {advertised}"
        + (", pins the current leaf" if server.pins else "")
        + (
            ", asks for the certificate after the handshake, for the action's path only"
            if cfg.client_cert_paths
            else ""
        )
        + (f", answers after {cfg.answer_delay:g} s" if cfg.answer_delay else ""),
        f"  caller: identity {_who(step.scenario)}, "
        f"TLS {step.scenario.tls.value if step.scenario.tls else 'auto'}, Java client model"
        + (
            f", as {PROFILES[step.scenario.sender].label}"
            if step.scenario.sender is not Sender.AJO_CUSTOM_ACTION
            else ""
        ),
        *_authentication(step.scenario),
        f"  verdict: {result.actual} over {verdict.tls_version or 'no TLS version'}, client certificate "
        f"{_sent(verdict.client_cert_sent)}"
        + (f", jo_status_code {verdict.jo_status_code}" if step.scenario.sender is Sender.AJO_CUSTOM_ACTION else "")
        + f"  [{status}]",
        *textwrap.wrap(verdict.explanation, 100, initial_indent="  why: ", subsequent_indent="       "),
        *textwrap.wrap(verdict.fix, 100, initial_indent="  fix: ", subsequent_indent="       "),
    ]


def _authentication(scenario: Scenario) -> list[str]:
    """What an authentication step adds: the token endpoint, the identity provider, what the app checks."""
    lines = []
    if scenario.auth is Auth.CUSTOM:
        lines.append(
            f"  authentication: custom authorization; token endpoint {scenario.token_server.value}-only, token "
            f"call {'with' if scenario.token_cert else 'without'} the client certificate"
        )
    elif scenario.auth is Auth.CERTIFICATE:
        held = ", ".join(i.value for i in scenario.registered)
        aud = "another tenant's URL" if scenario.wrong_audience else "the token endpoint"
        lines.append(f"  authentication: certificateCredential; the identity provider holds {held}; aud {aud}")
    if scenario.allow or scenario.authorize is not Authorize.CERTIFICATE:
        names = ", ".join(scenario.allow) or "Adobe's name"
        what = {
            Authorize.CERTIFICATE: f"the certificate's name ({names})",
            Authorize.TOKEN: "the token",
            Authorize.BOTH: f"the certificate's name ({names}) and the token",
        }[scenario.authorize]
        lines.append(f"  the app authorizes: {what}")
    return lines


def _versions(low: str, high: str) -> str:
    return f"TLS {low} only" if low == high else f"TLS {low}-{high}"


def _sent(sent: bool | None) -> str:
    return "not used (no action call)" if sent is None else "sent" if sent else "not sent"


def _who(scenario: Scenario) -> str:
    who = scenario.identity.value if scenario.identity else "none"
    return who + (" (leaf only)" if scenario.chain is Chain.LEAF else "")
