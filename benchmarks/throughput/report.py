"""The report: one table of every server's numbers, the ratios, and which targets are met."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from .load import Load
from .meter import Window

# the project's own targets: (what, lab side, reference, minimum ratio)
TARGETS = [
    ("keep-alive, one process", "lab", "wiremock", 2.0),
    ("keep-alive, one process", "lab", "nginx", 0.4),
    ("new handshakes with one request", "lab", "nginx", 0.9),
]
WORKERS_TARGET = 1.7  # lab xN keep-alive / lab keep-alive, on 2 cores
MEMORY_TARGET_MIB = 60.0  # per lab worker process


@dataclass(frozen=True)
class Run:
    load: Load
    window: Window

    @property
    def rps(self) -> float:
        return self.load.ok / self.window.wall

    @property
    def cpu_ms_per_request(self) -> float | None:
        return self.window.server_cpu * 1000 / self.load.ok if self.load.ok else None

    @property
    def flagged(self) -> bool:
        return self.load.failed > 0 or self.load.ok == 0


@dataclass
class Result:
    name: str
    version: str
    runs: dict[str, Run] = field(default_factory=dict)  # "keep-alive", "handshakes"
    latency_ms: float | None = None
    peak_mib: list[float] = field(default_factory=list)  # per process of the tree (VmHWM)
    tree_mib: float = 0.0  # the highest sum of the tree's proportional memory (PSS) while measured
    unmeasured: list[Load] = field(default_factory=list)  # requests outside the windows: latency, warm-up


def _cell(value: float | None, form: str) -> str:
    return "n/a" if value is None else format(value, form)


def table(results: Sequence[Result]) -> list[str]:
    lines = [_row("server", "measurement", "req/s", "ok", "failed", "CPU/req", "srv CPU", "gen CPU")]
    for result in results:
        for kind, run in result.runs.items():
            cpu = f"{_cell(run.cpu_ms_per_request, '.3f')} ms"
            shares = (
                f"{run.window.server_cpu / run.window.wall:.0%}",
                f"{run.window.generator_cpu / run.window.wall:.0%}",
            )
            note = f"  << FLAGGED: {run.load.failed} failed ({run.load.first_error})" if run.flagged else ""
            lines.append(_row(result.name, kind, f"{run.rps:.1f}", run.load.ok, run.load.failed, cpu, *shares) + note)
    return lines


def _row(*cells: object) -> str:
    server, kind, rate, ok, failed, cpu, server_cpu, generator_cpu = cells
    return f"{server:<10} {kind:<11} {rate:>9} {ok:>8} {failed:>6} {cpu:>9} {server_cpu:>8} {generator_cpu:>8}"


def details(results: Sequence[Result]) -> list[str]:
    lines = []
    for r in results:
        per = ", ".join(f"{m:.0f}" for m in r.peak_mib)
        lines.append(
            f"{r.name:<10} {r.version}: latency {_cell(r.latency_ms, '.2f')} ms (median, one keep-alive connection); "
            f"memory: {r.tree_mib:.0f} MiB for the process tree (PSS), peak per process {per} MiB (RSS)"
        )
    return lines


def _rps(results: Sequence[Result], name: str, kind: str) -> Run | None:
    found = next((r for r in results if r.name == name), None)
    return found.runs.get(kind) if found else None


def _verdict(ratio: float, target: float, flagged: bool) -> str:
    met = "MET" if ratio >= target else "NOT MET"
    return f"{met} (a run had failures: not meaningful)" if flagged else met


def targets(results: Sequence[Result], workers: int) -> list[str]:
    lines = []
    for what, mine, theirs, target in TARGETS:
        kind = "keep-alive" if what.startswith("keep") else "handshakes"
        a, b = _rps(results, mine, kind), _rps(results, theirs, kind)
        if a is None or b is None or b.rps == 0:
            lines.append(f"{what}: {mine}/{theirs} >= {target:g}: n/a ({theirs} not measured)")
            continue
        ratio = a.rps / b.rps
        verdict = _verdict(ratio, target, a.flagged or b.flagged)
        lines.append(f"{what}: {mine}/{theirs} = {ratio:.2f} (>= {target:g}): {verdict}")
    one, many = _rps(results, "lab", "keep-alive"), _rps(results, f"lab x{workers}", "keep-alive")
    if one is not None and many is not None and one.rps:
        ratio = many.rps / one.rps
        verdict = _verdict(ratio, WORKERS_TARGET, one.flagged or many.flagged)
        lines.append(
            f"keep-alive with --workers {workers}: lab x{workers}/lab = {ratio:.2f} (>= {WORKERS_TARGET:g}): {verdict}"
        )
    for r in results:
        if r.name.startswith("lab") and r.peak_mib:
            workers_mib = r.peak_mib[1:] if len(r.peak_mib) > 1 else r.peak_mib  # a supervisor does not serve
            worst = max(workers_mib)
            met = "MET" if worst < MEMORY_TARGET_MIB else "NOT MET"
            lines.append(f"memory per worker, {r.name}: {worst:.0f} MiB peak (< {MEMORY_TARGET_MIB:g}): {met}")
    return lines
