"""Does the endpoint trust Adobe's real roots? Reading its answer to a trust probe (``caller/probe_certs.py``).

The probe presents, for each hierarchy, a chain under the real root whose signature is false. What the
endpoint answers depends on its stack (``caller/stacks.py``, ``Failure.SIGNATURE``):

| answer | trusts the root | does not | so |
|---|---|---|---|
| OpenSSL-based (HAProxy, openssl s_server) | decrypt_error | unknown_ca | yes / no |
| Go 1.20+ | unknown_ca | unknown_ca | cannot tell: the log says |
| Go 1.19 and older | bad_certificate | bad_certificate | cannot tell: the log says |
| Java (JSSE) | certificate_unknown | certificate_unknown | cannot tell: the log says |
| nginx | its 400 page | its 400 page | cannot tell: the error log says |

``unknown_ca`` means "no" only where the stack is known to tell the two apart: the stack probe says
OpenSSL, or the other hierarchy's probe got ``decrypt_error`` from the same endpoint.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from mtls_lab.caller.probe_certs import Hierarchy
from mtls_lab.caller.stacks import Stack
from mtls_lab.vocabulary import Reason, short_answer


class Trust(enum.Enum):
    YES = "yes"
    NO = "no"
    CANNOT_TELL = "cannot tell from outside"
    ACCEPTS_ANY = "accepts any certificate"
    NOT_ASKED = "not asked"  # the endpoint never requests a client certificate


@dataclass(frozen=True)
class TrustAnswer:
    """The trust check of one hierarchy: what the endpoint answered and what that means."""

    hierarchy: str  # Hierarchy value
    root: str
    trust: Trust
    answer: str  # "alert decrypt_error", "400 nginx_certificate_error", ...
    reading: str
    look_in_log: str = ""  # for "cannot tell": the log line that answers the question

    def to_json(self) -> dict[str, str]:
        return {
            "hierarchy": self.hierarchy,
            "root": self.root,
            "trust": self.trust.value,
            "answer": self.answer,
            "reading": self.reading,
            "look_in_log": self.look_in_log,
        }


def _java_log(root: str) -> str:
    return (
        "the Java server's log (or -Djavax.net.debug=ssl:handshake) says 'PKIX path validation failed: "
        "java.security.cert.CertPathValidatorException: signature check failed' if it trusts "
        f"{root}, and 'PKIX path building failed: ... unable to find valid certification path to requested "
        "target' if it does not"
    )


def _go_log(root: str) -> str:
    return (
        "the Go server's TLS handshake error (Caddy: with the global `debug` option) ends '(possibly because of "
        f'"crypto/rsa: verification error" while trying to verify candidate authority certificate "{root}")\' '
        "if it trusts the root; without that ending it does not (Go 1.19 leaves the ending out at times)"
    )


def _nginx_log(root: str) -> str:
    return (
        "nginx's error log (level info) says 'client SSL certificate verify error: (7:certificate signature "
        f"failure)' if it trusts {root}, and '(20:unable to get local issuer certificate)' if it does not"
    )


def read(hierarchy: Hierarchy, answer: str, guess: list[Stack], other_answers: list[str]) -> TrustAnswer:
    """What the endpoint's ``answer`` to this hierarchy's trust probe says (table in the module docstring)."""
    root = hierarchy.root

    def result(trust: Trust, reading: str, log: str = "") -> TrustAnswer:
        return TrustAnswer(hierarchy.value, root, trust, answer, reading, log)

    if answer == "alert decrypt_error":
        return result(Trust.YES, f"it found {root} in its trust store and rejected the probe's false signature")
    if answer == "alert unknown_ca":
        if guess == [Stack.OPENSSL] or "alert decrypt_error" in other_answers:
            return result(Trust.NO, f"it could not find {root} among the CAs it trusts (an OpenSSL-based server)")
        if Stack.GO in guess:
            why = "a Go server answers unknown_ca whether or not it trusts the root"
            return result(Trust.CANNOT_TELL, why, _go_log(root))
        return result(
            Trust.CANNOT_TELL,
            "unknown_ca means 'not trusted' from an OpenSSL-based server, but a Go server says it either way, and "
            "the probe could not tell which this is",
            _go_log(root),
        )
    if answer == "alert certificate_unknown":
        return result(Trust.CANNOT_TELL, "a Java (JSSE) server answers certificate_unknown either way", _java_log(root))
    if answer == "alert bad_certificate":
        return result(Trust.CANNOT_TELL, "a Go 1.19-or-older server answers bad_certificate either way", _go_log(root))
    if answer == short_answer(400, reason=Reason.NGINX_CERTIFICATE_ERROR, bare_status=True):
        return result(Trust.CANNOT_TELL, "nginx shows the same 400 page either way", _nginx_log(root))
    if answer == "accepted":
        return result(
            Trust.ACCEPTS_ANY,
            "it accepted a chain whose signature is false: it does not verify client certificates at the TLS layer "
            "(nginx optional_no_ca, or verification left to the app), so it takes Adobe's certificate and anyone's",
        )
    return result(
        Trust.CANNOT_TELL,
        "it rejects without saying why (no alert, or an HTTP answer that is the same for every failure)",
        "the endpoint's TLS log names the check that failed: a signature failure means it trusts the root; an "
        "unknown issuer means it does not",
    )


def not_asked(hierarchy: Hierarchy) -> TrustAnswer:
    return TrustAnswer(
        hierarchy.value,
        hierarchy.root,
        Trust.NOT_ASKED,
        "-",
        "the endpoint never requests a client certificate, so it checks none",
    )


# --- one readiness verdict per hierarchy ----------------------------------------------------------------------

APP_UNKNOWN = (
    "whether the app behind the TLS layer authorizes CN ajo-journeys.aep-mtls.adobe.com (only a real AJO call "
    "shows that; the lab's `mtls-lab call` shows how each answer looks)"
)


class State(enum.Enum):
    READY = "READY at the TLS layer"
    NOT_READY = "NOT READY"
    UNKNOWN = "UNKNOWN"


@dataclass(frozen=True)
class Readiness:
    """Will AJO's call with this hierarchy's certificate pass the endpoint's TLS layer?"""

    hierarchy: str
    chain: str
    state: State
    why: str
    steps: tuple[str, ...] = ()
    still_unknown: str = APP_UNKNOWN

    def to_json(self) -> dict[str, object]:
        return {
            "hierarchy": self.hierarchy,
            "chain": self.chain,
            "state": self.state.value,
            "why": self.why,
            "steps": list(self.steps),
            "still_unknown": self.still_unknown,
        }


def readiness(
    hierarchy: Hierarchy, requests_cert: bool, named: bool, names_given: bool, trust: TrustAnswer | None
) -> Readiness:
    """Combine: does the endpoint ask, will AJO's Java client send (CA names), does the TLS layer trust the chain."""
    chain = f"{hierarchy.root} / {hierarchy.intermediate}"
    add = f"add {hierarchy.root} and {hierarchy.intermediate} to the trust store the endpoint advertises"
    when = " before Adobe switches (mid-2026 to spring 2027)" if hierarchy is Hierarchy.MIGRATION else ""

    def verdict(state: State, why: str, *steps: str) -> Readiness:
        return Readiness(hierarchy.value, chain, state, why, steps)

    if not requests_cert:
        return verdict(
            State.NOT_READY,
            "the endpoint never asks for a client certificate, so AJO sends none",
            f"require a client certificate (mTLS-only, as Adobe asks) and {add}",
        )
    if names_given and not named:
        distrust = (
            f"; the trust check also says it does not trust {hierarchy.root}"
            if trust and trust.trust is Trust.NO
            else ""
        )
        return verdict(
            State.NOT_READY,
            f"the endpoint names other CAs, so AJO's Java client will omit this certificate (model){distrust}",
            f"{add}{when}, or advertise no CA names",
        )
    if trust is None:
        return verdict(State.UNKNOWN, "AJO will send its certificate; trust not checked (add --check-trust)")
    if trust.trust is Trust.YES:
        return verdict(State.READY, f"AJO will send its certificate and the endpoint trusts {hierarchy.root}")
    if trust.trust is Trust.NO:
        return verdict(State.NOT_READY, f"the endpoint does not trust {hierarchy.root}", f"{add}{when}")
    if trust.trust is Trust.ACCEPTS_ANY:
        return verdict(
            State.READY,
            "the TLS layer accepts any certificate; the app must verify the chain and authorize the name",
            "verify client certificates at the TLS layer (trusting only Adobe's chain)",
        )
    return verdict(
        State.UNKNOWN,
        f"AJO will send its certificate; whether the endpoint trusts {hierarchy.root} {trust.trust.value}: "
        f"{trust.look_in_log or trust.reading}; or read its trust store offline: mtls-lab trust-store FILE",
    )
