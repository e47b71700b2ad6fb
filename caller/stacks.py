"""What each common server stack answers for each client-certificate failure, measured.

The same failure reaches the caller as different alerts depending on the TLS library that terminates
the connection: a Java server reports every rejected certificate as ``certificate_unknown``, Go before
1.20 says ``bad_certificate`` for all of them, OpenSSL names the check that failed, nginx completes the
handshake and answers with its 400 page. So an alert is evidence about the *stack*, and only then
about the cause: ``caller/causes.py`` reasons from the facts first and cites this table.

``MEASURED`` is the table of docs/server-stacks.md. tests/test_stacks.py starts each real server on
127.0.0.1 (configured from ``mtls_lab.server.stack_configs``, requiring a client certificate and trusting the
lab's Adobe-like root), presents each failure on TLS 1.2 and TLS 1.3, and asserts every cell. Servers of
one family answer alike (HAProxy and Apache httpd as ``openssl s_server``), and the family is what the caller can tell.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from mtls_lab.vocabulary import Reason, short_answer


class Stack(enum.Enum):
    """A TLS stack family: servers whose answers to client-certificate failures are the same."""

    OPENSSL = "openssl"
    JAVA = "java"
    GO = "go"
    GO_LEGACY = "go-legacy"
    NGINX = "nginx"

    @property
    def label(self) -> str:
        return _LABELS[self]

    @property
    def short(self) -> str:
        return _SHORT[self]


_LABELS = {
    Stack.OPENSSL: "an OpenSSL-based server (Apache httpd, HAProxy, openssl s_server, most proxies and gateways)",
    Stack.JAVA: "a Java server (JSSE: Tomcat, Jetty, Spring Boot, Java gateways)",
    Stack.GO: "a Go server, Go 1.20 or later (Caddy, Traefik, Go services)",
    Stack.GO_LEGACY: "a Go server built with Go 1.19 or earlier (e.g. Debian 12's Caddy 2.6)",
    Stack.NGINX: "nginx",
}
_SHORT = {
    Stack.OPENSSL: "OpenSSL-based",
    Stack.JAVA: "Java (JSSE)",
    Stack.GO: "Go 1.20+",
    Stack.GO_LEGACY: "Go 1.19-or-older",
    Stack.NGINX: "nginx",
}


class Failure(enum.Enum):
    """What is wrong with the client certificate, as the server's verifier sees it."""

    NOT_SENT = "none sent"
    UNTRUSTED = "chain from a CA the server does not trust"
    LEAF_ONLY = "intermediate not sent, server has only the root"
    SELF_SIGNED = "self-signed"
    EXPIRED = "expired"
    NOT_YET_VALID = "not yet valid"
    NO_CLIENT_AUTH = "no clientAuth in the extended key usage"
    SIGNATURE = "a false signature under a trusted root (the trust probe)"
    STACK_PROBE = "expired and self-signed (the stack probe)"
    VERSION = "no common TLS version (client TLS 1.3 only, server TLS 1.2 at most)"


def _alerts(tls12: str, tls13: str | None = None) -> tuple[str, str]:
    return (short_answer(alert=tls12), short_answer(alert=tls13 or tls12))


_NGINX_BAD = short_answer(400, reason=Reason.NGINX_CERTIFICATE_ERROR, bare_status=True)
_NGINX_NONE = short_answer(400, reason=Reason.NGINX_NO_CERTIFICATE, bare_status=True)

# (TLS 1.2 answer, TLS 1.3 answer) per failure, with the server requiring a client certificate.
_OPENSSL: dict[Failure, tuple[str, str]] = {
    Failure.NOT_SENT: _alerts("handshake_failure", "certificate_required"),
    Failure.UNTRUSTED: _alerts("unknown_ca"),
    Failure.LEAF_ONLY: _alerts("unknown_ca"),
    Failure.SELF_SIGNED: _alerts("unknown_ca"),
    Failure.EXPIRED: _alerts("certificate_expired"),
    Failure.NOT_YET_VALID: _alerts("bad_certificate"),
    Failure.NO_CLIENT_AUTH: _alerts("unsupported_certificate"),
    Failure.SIGNATURE: _alerts("decrypt_error"),
    Failure.STACK_PROBE: _alerts("unknown_ca"),
    Failure.VERSION: ("-", "alert protocol_version"),
}
_JAVA: dict[Failure, tuple[str, str]] = {
    **{failure: _alerts("certificate_unknown") for failure in Failure},
    Failure.NOT_SENT: _alerts("bad_certificate"),
    Failure.VERSION: ("-", "alert protocol_version"),
}
_GO: dict[Failure, tuple[str, str]] = {
    **_OPENSSL,
    Failure.NOT_YET_VALID: _alerts("certificate_expired"),
    Failure.NO_CLIENT_AUTH: _alerts("bad_certificate"),
    Failure.SIGNATURE: _alerts("unknown_ca"),
    Failure.STACK_PROBE: _alerts("certificate_expired"),
}
_GO_LEGACY: dict[Failure, tuple[str, str]] = {
    **{failure: _alerts("bad_certificate") for failure in Failure},
    Failure.VERSION: ("-", "alert protocol_version"),
}
_NGINX: dict[Failure, tuple[str, str]] = {
    **{failure: (_NGINX_BAD, _NGINX_BAD) for failure in Failure},
    Failure.NOT_SENT: (_NGINX_NONE, _NGINX_NONE),
    Failure.VERSION: ("-", "alert protocol_version"),
}

ANSWERS: dict[Stack, dict[Failure, tuple[str, str]]] = {
    Stack.OPENSSL: _OPENSSL,
    Stack.JAVA: _JAVA,
    Stack.GO: _GO,
    Stack.GO_LEGACY: _GO_LEGACY,
    Stack.NGINX: _NGINX,
}


@dataclass(frozen=True)
class MeasuredServer:
    """A real server the table was measured on (tests/support/stacks.py starts it)."""

    key: str  # tests/support/stacks.py's name for it
    name: str
    stack: Stack


MEASURED: tuple[MeasuredServer, ...] = (
    MeasuredServer("openssl", "openssl s_server (OpenSSL 3.0)", Stack.OPENSSL),
    MeasuredServer("haproxy", "HAProxy 2.6 (OpenSSL 3.0)", Stack.OPENSSL),
    MeasuredServer("apache", "Apache httpd 2.4 (mod_ssl, OpenSSL 3.0)", Stack.OPENSSL),
    MeasuredServer("java", "JDK 17 JSSE SSLServerSocket", Stack.JAVA),
    MeasuredServer("tomcat", "Tomcat 10.1 (JSSE, JDK 17)", Stack.JAVA),
    MeasuredServer("go", "Caddy 2.11 (Go 1.26)", Stack.GO),
    MeasuredServer("go-legacy", "Caddy 2.6 (Go 1.19, Debian 12)", Stack.GO_LEGACY),
    MeasuredServer("nginx", "nginx 1.22 (OpenSSL 3.0)", Stack.NGINX),
)


def answer(stack: Stack, failure: Failure, tls: str) -> str:
    """What ``stack`` answers to ``failure`` on TLS ``tls`` ("1.2" or "1.3")."""
    return ANSWERS[stack][failure][0 if tls == "1.2" else 1]


def _columns(tls: str | None) -> tuple[str, ...]:
    return (tls,) if tls in ("1.2", "1.3") else ("1.2", "1.3")


def senders(seen: str, failure: Failure, tls: str | None) -> list[Stack]:
    """The stacks that answer ``failure`` with ``seen`` (either TLS version when ``tls`` is unknown)."""
    return [s for s in Stack if any(answer(s, failure, v) == seen for v in _columns(tls))]


def failures_behind(seen: str, stack: Stack, tls: str | None) -> list[Failure]:
    """Every failure ``stack`` reports as ``seen``: more than one means the answer alone cannot tell."""
    probes = (Failure.SIGNATURE, Failure.STACK_PROBE, Failure.VERSION)
    return [f for f in Failure if f not in probes and any(answer(stack, f, v) == seen for v in _columns(tls))]


def guess(observed: Mapping[tuple[Failure, str], str]) -> list[Stack]:
    """The stacks consistent with the most observed ``(failure, tls) -> answer`` (all of them, usually)."""
    scores = {s: sum(answer(s, f, tls) == seen for (f, tls), seen in observed.items()) for s in Stack}
    best = max(scores.values(), default=0)
    return [s for s, score in scores.items() if score == best and best > 0]


def describe(stacks: Iterable[Stack]) -> str:
    """'Java (JSSE) or Go 1.19-or-older'; both Go generations together read 'Go'."""
    chosen = set(stacks)
    both_go = {Stack.GO, Stack.GO_LEGACY} <= chosen
    names = []
    for stack in Stack:  # the table's order
        if stack in chosen and not (both_go and stack is Stack.GO_LEGACY):
            names.append("Go" if both_go and stack is Stack.GO else stack.short)
    return " or ".join(names) if names else "no stack the lab has measured"


def table_markdown() -> str:
    """The measured table, one row per failure and column per stack family (TLS 1.2 / TLS 1.3)."""
    stacks = list(Stack)
    head = "| client certificate | " + " | ".join(s.short for s in stacks) + " |"
    lines = [head, "|---" * (len(stacks) + 1) + "|"]
    for failure in Failure:
        cells = []
        for stack in stacks:
            tls12, tls13 = ANSWERS[stack][failure]
            cells.append(_cell(tls13) if tls12 in (tls13, "-") else f"{_cell(tls12)} / {_cell(tls13)}")
        lines.append(f"| {failure.value} | " + " | ".join(cells) + " |")
    servers = "; ".join(f"{s.stack.short}: {s.name}" for s in MEASURED)
    return "\n".join(lines) + f"\n\nTLS 1.2 / TLS 1.3 where they differ. Measured on 127.0.0.1 with: {servers}."


def _cell(text: str) -> str:
    return text.removeprefix("alert ") if text.startswith("alert ") else text
