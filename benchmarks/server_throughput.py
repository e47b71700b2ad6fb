"""The lab's reference server next to the servers people actually pick for an mTLS endpoint, in one run.

Measured on this machine over loopback (127.0.0.1), mTLS required, the same lab PKI and the same load
generator for every server (``throughput/load.py``; only 2xx answers count):

1. keep-alive: POSTs on persistent connections, ``--concurrency`` client processes;
2. handshakes: one POST per new connection (a full handshake with the Adobe-like client chain, no
   session resumption);
3. CPU per request (the server's process tree, from /proc), peak memory (per process and the tree),
   the median latency on one warm keep-alive connection;
4. the lab with one process and with ``--workers N``; nginx (``worker_processes 1``) when installed;
   WireMock (its standalone jar, from the npm package ``wiremock``, on Java) when found.

It prints one table, the ratios against the project's own targets (MET / NOT MET, never an error), and a check
that the lab recorded every request it answered. ``--profile`` adds where the lab spends its time
(py-spy when installed, else cProfile). A run with failed requests is flagged and exits 1. Servers and
load generator share the machine's cores: the CPU columns say who was busy.

Run: ``python benchmarks/server_throughput.py [--seconds 5] [--warmup 4] [--concurrency 8] [--workers 2] [--profile]``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import socket
import ssl
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from throughput import load, meter, profile, report, servers

from mtls_lab.certs.layout import CA, Identity, LabPaths
from mtls_lab.certs.pki import generate

JVM_WARMUP = 3  # a JVM compiles its hot paths after thousands of requests: WireMock warms up three times longer


@dataclass(frozen=True)
class Options:
    seconds: float
    warmup: float
    concurrency: int
    tls: str
    workers: int
    nginx: bool
    wiremock: bool
    wiremock_jar: Path | None
    profile: bool


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((load.HOST, 0))
        return int(sock.getsockname()[1])


def progress(message: str) -> None:
    print(f"... {message}", file=sys.stderr, flush=True)


def measure(server: servers.Server, opts: Options) -> report.Result:
    """Latency, keep-alive, handshakes and memory of one running server."""
    result = report.Result(server.name, server.version)
    warmup = opts.warmup * (JVM_WARMUP if server.name == "wiremock" else 1)
    progress(f"{server.name}: warm-up {warmup:g} s, latency, keep-alive and handshakes {opts.seconds:g} s each")
    for new_connections in (False, True):
        warm, _ = load.run(server.client, opts.concurrency, warmup / 2, new_connections, lambda a, b: None)
        result.unmeasured.append(warm)
    result.latency_ms = load.latency_ms(server.client)
    if result.latency_ms is not None:
        result.unmeasured.append(load.Load(load.LATENCY_REQUESTS + 1, 0, 1, 0.0))
    tree = meter.tree(server.process.pid)
    for kind, new_connections in (("keep-alive", False), ("handshakes", True)):
        done, window = load.run(
            server.client, opts.concurrency, opts.seconds, new_connections, _metered(server.process.pid)
        )
        window = replace(window, generator_cpu=done.generator_cpu)
        result.runs[kind] = report.Run(done, window)
        result.tree_mib = max(result.tree_mib, window.tree_mib)
    result.peak_mib = [meter.peak_rss_mib(pid) for pid in tree]
    return result


def _metered(pid: int) -> Callable[[float, float], meter.Window]:
    def during(start_at: float, stop_at: float) -> meter.Window:
        time.sleep(max(0.0, start_at - time.monotonic()))
        watching = meter.Meter(pid)
        time.sleep(max(0.0, stop_at - time.monotonic()))
        return watching.read()

    return during


def run_server(name: str, start: Callable[[], servers.Server], opts: Options, notes: list[str]) -> report.Result | None:
    progress(f"{name}: starting")
    try:
        server = start()
    except (RuntimeError, FileNotFoundError, OSError) as exc:
        notes.append(f"{name}: not measured: {exc}")
        return None
    try:
        return measure(server, opts)
    finally:
        servers.stop(server)


def record_check(path: Path, result: report.Result | None) -> str:
    """Requests the lab recorded against the requests it answered (the generator's, the probes')."""
    if result is None or not path.exists():
        return ""
    lines = path.read_bytes().splitlines()
    recorded = sum(json.loads(line).get("kind") == "request" for line in lines)
    loads = [run.load for run in result.runs.values()] + result.unmeasured
    low = 1 + sum(x.ok for x in loads)  # 1: the request that showed the server ready
    high = low + sum(x.failed for x in loads)
    verdict = "OK" if low <= recorded <= high else "MISMATCH"
    span = str(low) if low == high else f"{low}..{high}"
    return f"record check, {result.name}: {recorded} requests recorded, {span} answered: {verdict}"


def profile_lab(paths: LabPaths, work: Path, client: load.Client, opts: Options) -> list[str]:
    spy = profile.py_spy()
    out = work / ("profile.txt" if spy else "profile.pstats")
    lab = servers.start_lab(paths, work, client, 1, work / "profiled.jsonl", profile.lab_command(spy, out))
    progress(f"lab: profiling keep-alive for {opts.seconds:g} s with {'py-spy' if spy else 'cProfile'}")
    try:
        attached = profile.attach(spy, lab.process.pid, opts.seconds + load.START_DELAY, out) if spy else None
        load.run(client, opts.concurrency, opts.seconds, False, lambda a, b: None)
        if attached is not None:
            attached.wait(timeout=60)
    finally:
        if spy:
            servers.stop(lab)
        else:
            profile.stop_profiled(lab.process)
    return profile.py_spy_report(out) if spy else profile.cprofile_report(out)


def machine() -> str:
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        platform.processor() or "?",
    )
    return f"{os.cpu_count()} CPUs ({model}), {platform.system()} {platform.release()}"


def main(argv: Sequence[str] | None = None) -> int:
    opts = parse_args(argv)
    jar = servers.find_wiremock(opts.wiremock_jar) if opts.wiremock else None
    notes: list[str] = []
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="mtls-bench-") as tmp:
        work = Path(tmp)
        started = time.perf_counter()
        paths = generate(work / "certs").paths
        pki_seconds = time.perf_counter() - started
        base = load.Client(
            0, paths.client_cert(Identity.ADOBE), paths.client_key(Identity.ADOBE), paths.ca(CA.SERVER_ROOT), opts.tls
        )
        records = {1: work / "lab-1.jsonl", opts.workers: work / f"lab-{opts.workers}.jsonl"}
        plan: list[tuple[str, Callable[[load.Client], servers.Server]]] = [
            ("lab", lambda c: servers.start_lab(paths, work, c, 1, records[1])),
        ]
        if opts.workers > 1:
            plan.append(
                (
                    f"lab x{opts.workers}",
                    lambda c: servers.start_lab(paths, work, c, opts.workers, records[opts.workers]),
                )
            )
        if opts.nginx:
            plan.append(("nginx", lambda c: servers.start_nginx(paths, work, c)))
        if opts.wiremock and jar is not None:
            plan.append(("wiremock", lambda c: servers.start_wiremock(jar, paths, work, c)))
        elif opts.wiremock:
            notes.append("wiremock: not measured: no standalone jar (npm install wiremock, or --wiremock-jar PATH)")
        results: list[report.Result] = []
        for name, start in plan:
            client = replace(base, port=free_port())
            found = run_server(name, lambda s=start, c=client: s(c), opts, notes)  # type: ignore[misc]
            results += [found] if found else []
        checks = [
            record_check(records[n], next((r for r in results if r.name == name), None))
            for n, name in ((1, "lab"), (opts.workers, f"lab x{opts.workers}"))
        ]
        profiled = profile_lab(paths, work, replace(base, port=free_port()), opts) if opts.profile else []
    print(
        f"mtls-lab server throughput, {dt.date.today()}: mTLS on {load.HOST}, TLS {opts.tls}, {opts.seconds:g} s per "
        f"measurement, {opts.concurrency} client processes; {machine()}; load average {load_before:.2f} before the run "
        f"(its own processes raise it); Python {platform.python_version()}, {ssl.OPENSSL_VERSION}"
    )
    print(f"PKI generation: {pki_seconds:.2f} s")
    print()
    for line in [*report.table(results), "", *report.details(results), "", *report.targets(results, opts.workers)]:
        print(line)
    for line in [c for c in checks if c] + notes:
        print(line)
    if profiled:
        print()
        print("\n".join(profiled))
    flagged = [f"{r.name} {kind}" for r in results for kind, run in r.runs.items() if run.flagged]
    if flagged:
        print(f"FLAGGED: failed requests in {', '.join(flagged)}: those numbers are not valid")
    return 1 if flagged else 0


def parse_args(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5, help="duration of each measurement (default 5)")
    parser.add_argument("--warmup", type=float, default=4, help="unmeasured load before measuring (default 4 s)")
    parser.add_argument("--concurrency", type=int, default=8, help="client processes (default 8)")
    parser.add_argument("--tls", choices=["1.2", "1.3"], default="1.3", help="TLS version (default 1.3)")
    parser.add_argument(
        "--workers", type=int, default=2, help="also measure the lab with --workers N (default 2; 1: skip)"
    )
    parser.add_argument("--no-nginx", dest="nginx", action="store_false", help="do not measure nginx")
    parser.add_argument("--no-wiremock", dest="wiremock", action="store_false", help="do not measure WireMock")
    parser.add_argument(
        "--wiremock-jar", type=Path, help="WireMock's standalone jar (default: $WIREMOCK_JAR or npm's wiremock)"
    )
    parser.add_argument("--profile", action="store_true", help="also profile the lab server (py-spy, else cProfile)")
    ns = parser.parse_args(argv)
    if ns.seconds <= 0 or ns.warmup < 0 or ns.concurrency < 1 or ns.workers < 1:
        parser.error("--seconds must be positive, --warmup not negative, --concurrency and --workers at least 1")
    if ns.wiremock_jar is not None and not ns.wiremock_jar.is_file():
        parser.error(f"--wiremock-jar {ns.wiremock_jar}: no such file")
    return Options(
        ns.seconds, ns.warmup, ns.concurrency, ns.tls, ns.workers, ns.nginx, ns.wiremock, ns.wiremock_jar, ns.profile
    )


if __name__ == "__main__":
    raise SystemExit(main())
