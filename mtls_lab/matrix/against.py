"""The matrix against servers that are already running: ``mtls-lab matrix --against MODE=URL``.

``mtls-lab matrix`` starts its own servers. With ``--against`` it calls servers started elsewhere, such
as the compose profile's ``server-tls``, ``server-mtls`` and ``server-mixed``. A running server has one
configuration, so only the scenarios written for *that* configuration can be checked against it: the
ones whose server is what ``mtls-lab serve --mode MODE`` runs with its defaults (trusting and
advertising the Adobe-like root, TLS 1.2-1.3, the Adobe CN allowed, no pins). Before calling, each
target's ``/_lab/health`` is asked which mode it runs, so a swapped URL is an error, not 51 mismatches.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import httpx

from mtls_lab.certs.layout import CA, LabPaths
from mtls_lab.errors import LabError
from mtls_lab.matrix import runner
from mtls_lab.matrix.health import Health, probe
from mtls_lab.matrix.scenarios import Scenario, row
from mtls_lab.server.settings import Mode, ServerConfig


@dataclass(frozen=True)
class Target:
    """A running lab server and the mode it is said to run."""

    mode: Mode
    url: str  # base URL, no path: https://server-mtls:8443


def parse_target(text: str) -> Target:
    """``mtls=https://server-mtls:8443`` -> Target; LabError says what a good one looks like."""
    mode, sep, url = text.partition("=")
    example = "e.g. mtls=https://server-mtls:8443"
    if not sep or mode not in {m.value for m in Mode}:
        raise LabError(f"--against {text}: expected MODE=URL with MODE one of tls, mtls, mixed ({example})")
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise LabError(f"--against {text}: {url!r} is not a URL ({example})") from exc
    if parsed.scheme != "https" or not parsed.host or parsed.path not in ("", "/") or parsed.query:
        raise LabError(f"--against {text}: give the server's https base URL, without a path ({example})")
    return Target(Mode(mode), url.rstrip("/"))


def default_server(mode: Mode, pki: LabPaths) -> ServerConfig:
    """The configuration the matrix gives a scenario whose server is ``mtls-lab serve --mode MODE``."""
    return dataclasses.replace(ServerConfig(), mode=mode, certs=pki.root, trust=(pki.ca(CA.ADOBE_ROOT),), quiet=True)


def pair(scenarios: list[Scenario], targets: list[Target], pki: LabPaths) -> list[tuple[Scenario, Target]]:
    """Each scenario that one of the targets can answer, with that target (in scenario order)."""
    by_mode = {t.mode: t for t in targets}
    if len(by_mode) < len(targets):
        raise LabError("--against: one URL per mode: the same mode was given twice")
    return [(s, by_mode[s.mode]) for s in scenarios if s.mode in by_mode and _on_default_server(s, pki)]


def _on_default_server(scenario: Scenario, pki: LabPaths) -> bool:
    # Both: the scenario table's own server defaults (a row given no server settings, so a server-side
    # field added later counts too), and the ServerConfig the matrix would start, compared with `serve`'s.
    plain = row(scenario.mode, None, None, "accepted")
    same_row = scenario.server_key() == plain.server_key()
    return same_row and runner.server_config(scenario, pki) == default_server(scenario.mode, pki)


def check(target: Target, pki: LabPaths) -> None:
    """LabError unless the target is up and, when its health route answers, runs the mode it is said to."""
    found = probe(target.url, pki)
    if found.state is Health.HEALTHY and found.mode != target.mode.value:
        raise LabError(f"--against {target.mode.value}={target.url}: that server runs mode {found.mode}: fix --against")
    if found.state.exit_code(strict=False):
        raise LabError(f"--against {target.mode.value}={target.url}: {found.detail}: start it or fix the URL")


def run_against(
    scenarios: list[Scenario], texts: list[str], pki: LabPaths, progress: runner.Progress | None = None
) -> list[runner.Result]:
    """Run the scenarios the given servers can answer, against them; LabError if none can."""
    targets = [parse_target(text) for text in texts]
    pairs = pair(scenarios, targets, pki)
    if not pairs:
        modes = ", ".join(t.mode.value for t in targets)
        raise LabError(f"--against: no chosen scenario runs on a default {modes} server: widen --only/--filter")
    for target in targets:
        check(target, pki)
    results = []
    for index, (scenario, target) in enumerate(pairs):
        if progress:
            progress(index, len(pairs), scenario)
        results.append(runner.call_at(scenario, pki, target.url))
    return results
