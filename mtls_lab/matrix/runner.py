"""Run scenarios: start the servers they need (one per distinct configuration), call, compare, report."""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import Path
from typing import Any, TextIO

from mtls_lab.caller import senders
from mtls_lab.caller.action import parse
from mtls_lab.caller.call import CallOptions, call
from mtls_lab.caller.senders import PROFILES, Sender
from mtls_lab.caller.tls import ClientIdentity
from mtls_lab.caller.verdict import Verdict
from mtls_lab.certs.inspect import fingerprint, load_pem_chain
from mtls_lab.certs.layout import Identity, LabPaths
from mtls_lab.lifecycle.synced import synced_bundle
from mtls_lab.matrix.scenarios import SLOW_ANSWER, Advertise, Auth, Scenario
from mtls_lab.server.run import RunningServer
from mtls_lab.server.settings import ServerConfig
from mtls_lab.vocabulary import short_answer

Progress = Callable[[int, int, Scenario], None]
Observe = Callable[["Result", RunningServer], None]  # each result with its server, while the server runs
WRONG_AUDIENCE = "https://login.microsoftonline.com/another-tenant/oauth2/v2.0/token"


@dataclass(frozen=True)
class Result:
    scenario: Scenario
    verdict: Verdict
    seconds: float

    @property
    def actual(self) -> str:
        v = self.verdict
        which = "token " if v.failed_call == "token" else ""
        if v.outcome.value == "accepted":
            return "accepted"
        if v.alert:
            return which + short_answer(alert=v.alert)
        if v.status is not None and v.failed_call == "token":
            error = v.token_call.error if v.token_call else None
            return f"token {v.status} {error}" if error else f"token {v.status}"
        if v.status is not None:
            return short_answer(v.status, reason=v.server_reason, bare_status=True)
        return which + v.outcome.value

    @property
    def match(self) -> bool:
        return self.actual == self.scenario.expect and self.verdict.client_cert_sent is self.scenario.sent

    def to_json(self) -> dict[str, Any]:
        s = self.scenario
        return {
            "id": s.id,
            "server": {
                "mode": s.mode.value,
                "trust": [c.value for c in s.trust],
                "advertise": s.advertise.value,
                "tls_max": s.tls_max.value,
                "allow_cn": list(s.allow),
                "pinned_leaf": s.pin,
                "trust_sync_phase": s.trust_sync.value if s.trust_sync else None,
                "trust_sync_staged": s.staged,
                "trusts_adobe_leaf": s.leaf_trust,
                "authorize": s.authorize.value,
            },
            "caller": {
                "identity": s.identity.value if s.identity else "none",
                "chain": s.chain.value,
                "behavior": s.behavior.value,
                "tls": s.tls.value if s.tls else None,
                "authentication": s.auth.value if s.auth else None,
            },
            "expected": {"verdict": s.expect, "client_cert_sent": s.sent},
            "actual": {
                "verdict": self.actual,
                "client_cert_sent": self.verdict.client_cert_sent,
                "outcome": self.verdict.outcome.value,
                "phase": self.verdict.phase.value,
                "tls_version": self.verdict.tls_version,
                "jo_status_code": self.verdict.jo_status_code,
                "failed_call": self.verdict.failed_call,
            },
            "match": self.match,
            "fix": self.verdict.fix,
            "note": s.note,
            "seconds": round(self.seconds, 4),
        }


def select(
    scenarios: Iterable[Scenario], only: list[str] | None = None, patterns: str | list[str] | None = None
) -> list[Scenario]:
    """Scenarios whose id is in ``only`` and matches any glob of ``patterns`` (substring if no wildcard)."""
    chosen = [s for s in scenarios if not only or s.id in only]
    if patterns:
        globs = [
            p if any(c in p for c in "*?[") else f"*{p}*"
            for p in ([patterns] if isinstance(patterns, str) else patterns)
        ]
        chosen = [s for s in chosen if any(fnmatch(s.id, glob) for glob in globs)]
    return chosen


def server_config(scenario: Scenario, pki: LabPaths) -> ServerConfig:
    pins = (fingerprint(load_pem_chain(pki.client_leaf(Identity.ADOBE))[0]),) if scenario.pin else ()
    advertise = (
        scenario.advertise.value if isinstance(scenario.advertise, Advertise) else str(pki.ca(scenario.advertise))
    )
    return ServerConfig(
        mode=scenario.mode,
        certs=pki.root,
        trust=_trust(scenario, pki),
        advertise_ca=advertise,
        tls_max=scenario.tls_max,
        allow_cn=scenario.allow or ServerConfig().allow_cn,
        reject_style=scenario.style,
        alert_style=scenario.alerts,
        client_cert_header="X-SSL-Client-Cert" if scenario.proxy_without_header else None,
        pins=pins,
        trust_leaves=scenario.leaf_trust,
        quiet=True,
        authorize=scenario.authorize,
        client_cert_paths=("/custom-action",) if scenario.per_path else (),
        answer_delay=SLOW_ANSWER if scenario.slow else 0.0,
    )


def token_config(scenario: Scenario, pki: LabPaths) -> ServerConfig | None:
    """The server holding the scenario's token endpoint (and identity provider), or None without authentication."""
    if scenario.auth is None:
        return None
    leaves = tuple(pki.client_leaf(identity) for identity in scenario.registered)
    return ServerConfig(mode=scenario.token_server, certs=pki.root, idp_register=leaves, quiet=True)


class ServerPool:
    """The servers scenarios need, each distinct configuration started once."""

    def __init__(self, pki: LabPaths) -> None:
        self.pki = pki
        self._servers: dict[ServerConfig, RunningServer] = {}

    def get(self, config: ServerConfig) -> RunningServer:
        if config not in self._servers:
            self._servers[config] = RunningServer(config).start()
        return self._servers[config]

    def target(self, scenario: Scenario) -> RunningServer:
        return self.get(server_config(scenario, self.pki))

    def token(self, scenario: Scenario) -> RunningServer | None:
        config = token_config(scenario, self.pki)
        return None if config is None else self.get(config)

    def stop(self) -> None:
        for server in self._servers.values():
            server.request_stop()
        for server in self._servers.values():
            server.stop()


def _trust(scenario: Scenario, pki: LabPaths) -> tuple[Path, ...]:
    """The scenario's CA files (or Adobe's leaf), or the one bundle trust-sync made of them by the scenario's phase."""
    if scenario.leaf_trust:
        return (pki.client_leaf(Identity.ADOBE),)
    if scenario.trust_sync is None:
        return tuple(pki.ca(c) for c in scenario.trust)
    return (synced_bundle(pki, scenario.trust, scenario.trust_sync, scenario.staged),)


def server_label(scenario: Scenario) -> str:
    """The server's configuration in a few words, for ladder headers."""
    trusts = "Adobe's leaf" if scenario.leaf_trust else ", ".join(c.value for c in scenario.trust)
    advertise = (
        scenario.advertise.value if isinstance(scenario.advertise, Advertise) else f"only {scenario.advertise.value}"
    )
    staged = ", next hierarchy staged" if scenario.staged else ""
    synced = f" as trust-sync keeps it by phase {scenario.trust_sync.value}{staged}" if scenario.trust_sync else ""
    late = ", asks after the handshake for the action's path only" if scenario.per_path else ""
    return (
        f"{scenario.mode.value}{late}, TLS up to {scenario.tls_max.value}, trusts {trusts}{synced}, "
        f"advertises {advertise}"
    )


def run_one(scenario: Scenario, pki: LabPaths, server: RunningServer, token: RunningServer | None = None) -> Result:
    return call_at(scenario, pki, server.url, token.url if token else None)


def call_at(scenario: Scenario, pki: LabPaths, base_url: str, token_url: str | None = None) -> Result:
    """Replay the scenario's caller against the server at ``base_url`` (e.g. ``https://127.0.0.1:8443``), its
    token endpoint (if the row has authentication) on the server at ``token_url``."""
    started = time.perf_counter()
    spec: dict[str, Any] = {"name": "matrix_call", "url": base_url + "/custom-action", "method": "POST"}
    if scenario.auth is not None:
        if token_url is None:
            raise ValueError(f"{scenario.id}: an authentication row needs the token endpoint's server")
        spec["authentication"] = authentication(scenario, token_url)
    action = parse(spec)
    options = CallOptions(
        pki=pki,
        identity=ClientIdentity.from_lab(pki, scenario.identity, scenario.chain) if scenario.identity else None,
        behavior=scenario.behavior,
        tls=scenario.tls.value if scenario.tls else None,
        retries=0,
        token_cert=scenario.token_cert,
    )
    if scenario.sender is not Sender.AJO_CUSTOM_ACTION:  # its answer deadline; one attempt, as every row
        options = dataclasses.replace(senders.apply(PROFILES[scenario.sender], options), retries=0)
    verdict = call(action, {"profile": {}}, options)
    return Result(scenario, verdict, time.perf_counter() - started)


def authentication(scenario: Scenario, token_url: str) -> dict[str, Any]:
    """The action's authentication block for an authentication row, in AJO's format."""
    if scenario.auth is Auth.CUSTOM:
        return {
            "type": "customAuthorization",
            "endpoint": token_url + "/_lab/oauth2/token",
            "method": "POST",
            "headers": {"Authorization": "Basic EncodeBase64(ajo-lab:lab-secret)"},
            "body": {"bodyType": "form", "bodyParams": {"grant_type": "client_credentials"}},
            "tokenInResponse": "json://access_token",
            "cacheDuration": {"duration": 55, "timeUnit": "minutes"},
        }
    endpoint = token_url + "/_lab/idp/token"
    return {
        "type": "customAuthorization",
        "subType": "certificateCredential",
        "aud": WRONG_AUDIENCE if scenario.wrong_audience else endpoint,
        "endpoint": endpoint,
        "method": "POST",
        "body": {"bodyType": "form", "bodyParams": {"client_id": "ajo-lab-app", "grant_type": "client_credentials"}},
        "tokenInResponse": "json://access_token",
        "cacheDuration": {"duration": 55, "timeUnit": "minutes"},
    }


def run(
    scenarios: list[Scenario], pki: LabPaths, progress: Progress | None = None, observe: Observe | None = None
) -> list[Result]:
    """Run every scenario; each distinct server configuration is started once.

    ``observe`` sees each result with the server it called, before that server stops (the HTML report
    reads the server's record of the attempt there).
    """
    pool = ServerPool(pki)
    results: list[Result] = []
    try:
        with ThreadPoolExecutor(max_workers=4, thread_name_prefix="matrix-slow") as waiting:
            # a row whose endpoint answers slowly mostly waits: it runs next to the others, its result in its place
            slow = {
                i: waiting.submit(run_one, s, pki, pool.target(s), pool.token(s))
                for i, s in enumerate(scenarios)
                if s.slow
            }
            for index, scenario in enumerate(scenarios):
                if progress:
                    progress(index, len(scenarios), scenario)
                target = pool.target(scenario)
                later = slow.get(index)
                results.append(later.result() if later else run_one(scenario, pki, target, pool.token(scenario)))
                if observe:
                    observe(results[-1], target)
    finally:
        pool.stop()
    return results


def terminal_progress(stream: TextIO = sys.stderr) -> Progress | None:
    """A one-line progress indicator on a terminal; nothing when the output is piped."""
    if not stream.isatty():
        return None

    def show(index: int, total: int, scenario: Scenario) -> None:
        end = "\n" if index + 1 == total else ""
        stream.write(f"\r\033[K[{index + 1}/{total}] {scenario.id}{end}")
        stream.flush()

    return show


# --- reports ------------------------------------------------------------------------------------


def _words(result: Result) -> str:
    if result.verdict.failed_call == "token":
        return f"{result.actual} (action not called)"
    sent = {True: "cert sent", False: "no cert sent", None: "cert unknown"}[result.verdict.client_cert_sent]
    return f"{result.actual} ({sent})"


def _sent(sent: bool | None, short: bool = False) -> str:
    if sent is None:
        return "action not called"
    if short:
        return "sent" if sent else "not sent"
    return "cert sent" if sent else "no cert sent"


def render_text(results: list[Result]) -> str:
    width = max(len(r.scenario.id) for r in results) if results else 10
    lines = [f"{'scenario':<{width}}  verdict", f"{'-' * width}  {'-' * 50}"]
    for r in results:
        mark = "" if r.match else f"   <-- MISMATCH: expected {r.scenario.expect} ({_sent(r.scenario.sent)})"
        note = f"  [{r.scenario.note}]" if r.scenario.note and r.match else ""
        lines.append(f"{r.scenario.id:<{width}}  {_words(r)}{note}{mark}")
    lines.append(summary(results))
    return "\n".join(lines)


def render_markdown(results: list[Result]) -> str:
    lines = ["| scenario | expected | actual | match | fix |", "|---|---|---|---|---|"]
    for r in results:
        fix = r.verdict.fix.replace("|", "\\|") if r.verdict.outcome.value != "accepted" else ""
        expected = f"{r.scenario.expect} ({_sent(r.scenario.sent, short=True)})"
        lines.append(f"| `{r.scenario.id}` | {expected} | {_words(r)} | {'yes' if r.match else '**NO**'} | {fix} |")
    return "\n".join(lines) + "\n\n" + summary(results, timing=False)  # deterministic: docs/matrix.md embeds it


def render_json(results: list[Result]) -> str:
    return json.dumps(
        {
            "rows": [r.to_json() for r in results],
            "summary": {"total": len(results), "mismatches": sum(not r.match for r in results)},
        },
        indent=2,
    )


def summary(results: list[Result], timing: bool = True) -> str:
    bad = [r for r in results if not r.match]
    took = f" ({sum(r.seconds for r in results):.2f} s of calls)" if timing else ""
    return (
        f"{len(results)} scenarios, {len(results) - len(bad)} as expected, {len(bad)} mismatched{took}. "
        "Single attempt per scenario (AJO would retry all but 401/403/404 up to 3 times)."
    )
