"""docker-compose.yml in real containers: every documented command, run as a user types it.

Needs a Docker engine: ``make compose-test`` (scripts/compose-test.sh) starts one, installs Compose v2,
builds the image, and runs this module with ``MTLS_LAB_COMPOSE_E2E=1``; CI does it on every run.
Everything runs with the host-network override (tests/compose/host-network.yml).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pytest

from tests.compose.commands import (
    DEFAULT_SERVICES,
    DOCS_TEXT,
    DOWN,
    FLIPS,
    FORCE_CERTS,
    MATRIX,
    MATRIX_SERVICES,
    PLAIN_DOWN,
    RUN_CALLER,
    SHOWN,
    UID,
    Flip,
    shown_output,
)
from tests.compose.project import (
    E2E,
    HOST_NETWORK,
    NO_WAIT,
    SLOW_SECONDS,
    SLOW_SERVER,
    Container,
    PkiFile,
    Project,
    Run,
    networks,
)
from tests.support.docs_check import matches

if not E2E:
    pytest.skip(
        "no Docker engine: `make compose-test` starts one and runs these in real containers (CI does)",
        allow_module_level=True,
    )


@dataclass
class Timeline:
    """When the services of one `up` started and finished, and when the server listened."""

    certs: Container
    server: Container
    caller: Container
    listening: datetime  # when the server printed its start-up line


@dataclass
class RealRun:
    """Everything the documented commands did, in order, in one compose project."""

    flips: dict[str, Run] = field(default_factory=dict)
    timelines: dict[str, Timeline] = field(default_factory=dict)
    pki: dict[str, dict[str, PkiFile]] = field(default_factory=dict)  # after each step
    run_caller: Run | None = None
    one_offs_after_run: list[str] = field(default_factory=list)
    matrix: Run | None = None
    matrix_modes: dict[str, str] = field(default_factory=dict)
    networks_during: set[str] = field(default_factory=set)
    certs_log: list[str] = field(default_factory=list)
    force: Run | None = None
    plain_down: Run | None = None
    left_after_plain_down: list[str] = field(default_factory=list)
    down: Run | None = None
    left_after_down: list[str] = field(default_factory=list)


def _timeline(project: Project, after: Run) -> Timeline:
    """When certs, server and caller started and ended in the `up` that printed ``after``."""
    containers = project.containers()
    assert {f"{project.name}-{s}-1" for s in DEFAULT_SERVICES} <= set(containers), f"{containers}\n{after}"
    listening = [when for when, line in project.logs("server") if line.startswith("mtls-lab server on https://")]
    assert listening, f"the server never printed its start-up line\n{after}"
    seen = project.inspect("certs", "server", "caller")
    return Timeline(seen["certs"], seen["server"], seen["caller"], listening[-1])


@pytest.fixture(scope="module")
def real_run() -> Iterator[RealRun]:
    """The documented commands in the order a user would type them, then `down -v`."""
    project, seen = Project("mtls-lab-e2e"), RealRun()
    assert networks() == {"host", "none"}, "the engine must have no bridge network"
    project.force_down()  # what a killed earlier run may have left
    try:
        for flip in FLIPS:
            seen.flips[flip.id] = project.sh(flip.command)
            seen.timelines[flip.id] = _timeline(project, seen.flips[flip.id])
            seen.pki[flip.id] = project.pki()
        seen.run_caller = project.sh(RUN_CALLER)
        seen.one_offs_after_run = project.containers("com.docker.compose.oneoff=True")
        seen.pki["run"] = project.pki()
        seen.matrix = project.sh(MATRIX)
        seen.networks_during = networks()
        seen.matrix_modes = {s: c.network_mode for s, c in project.inspect(*MATRIX_SERVICES, *DEFAULT_SERVICES).items()}
        seen.pki["matrix"] = project.pki()
        seen.certs_log = [line for _, line in project.logs("certs")]
        seen.force = project.sh(FORCE_CERTS)
        seen.pki["force"] = project.pki()
        seen.plain_down = project.sh(PLAIN_DOWN)
        seen.left_after_plain_down = project.containers() + project.volumes()
        seen.down = project.sh(DOWN)
        seen.left_after_down = project.containers() + project.volumes()
    finally:
        project.force_down()
    yield seen


@pytest.mark.parametrize("flip", FLIPS, ids=lambda f: f.id)
def test_each_documented_flip_gives_its_verdict_in_real_containers(real_run: RealRun, flip: Flip) -> None:
    done = real_run.flips[flip.id]
    assert done.code == flip.exit_code, done
    assert done.verdict("caller").startswith(flip.verdict), done
    assert ("  why: " in done.output and "  fix: " in done.output) or flip.exit_code == 0


@pytest.mark.parametrize("flip", SHOWN, ids=lambda f: f.id)
def test_the_outputs_shown_in_the_docs_are_what_the_containers_print(real_run: RealRun, flip: Flip) -> None:
    printed = "\n".join(real_run.flips[flip.id].lines("caller"))
    assert matches(shown_output(flip), printed), f"the container printed:\n{printed}"


@pytest.mark.parametrize("flip", FLIPS, ids=lambda f: f.id)
def test_servers_start_after_certs_and_callers_after_their_server_listens(real_run: RealRun, flip: Flip) -> None:
    seen = real_run.timelines[flip.id]
    assert seen.certs.exit_code == 0
    assert seen.certs.finished <= seen.server.started, "the server started before certs had finished"
    assert seen.listening <= seen.caller.started, "the caller started before its server was listening"


def test_run_rm_caller_gives_the_default_verdict_and_leaves_no_caller(real_run: RealRun) -> None:
    done = real_run.run_caller
    assert done is not None
    assert done.code == FLIPS[0].exit_code, done
    assert done.verdict().startswith(FLIPS[0].verdict), done  # the caller's own output, no prefix
    assert not any(re.match(r"^[\w-]+-\d+\s+\|", line) for line in done.lines()), done
    assert real_run.one_offs_after_run == [], "`run --rm` left its container"


def test_the_matrix_profile_runs_against_three_servers(real_run: RealRun) -> None:
    done = real_run.matrix
    assert done is not None
    assert done.code == 0, done
    lines = done.lines("caller-matrix")
    rows = [line for line in lines if re.match(r"^(tls|mtls|mixed)/", line)]
    assert {row.split("/")[0] for row in rows} == {"tls", "mtls", "mixed"}
    assert len(rows) >= 40
    assert f"{len(rows)} scenarios, {len(rows)} as expected, 0 mismatched" in "\n".join(lines), done
    assert f"ending with `{len(rows)} scenarios, {len(rows)} as expected, 0 mismatched`" in " ".join(DOCS_TEXT.split())


def test_the_pki_volume_keys_are_0600_and_everything_belongs_to_the_lab_user(real_run: RealRun) -> None:
    pki = real_run.pki["default"]
    keys = [path for path in pki if path.endswith("key.pem")]
    assert len(keys) >= 9, sorted(pki)
    for path, info in pki.items():
        assert info.uid == UID, f"{path} belongs to uid {info.uid}"
    for key in keys:
        assert pki[key].mode == 0o600, f"{key}: {oct(pki[key].mode)}"
        folder = str(Path(key).parent)
        assert pki[folder].mode == 0o700, f"{folder}: {oct(pki[folder].mode)}"
    assert pki["."].mode == 0o700, "the volume's root keeps the mode of the image's /lab/certs"


def test_every_later_up_run_and_profile_reuses_the_pki(real_run: RealRun) -> None:
    first = real_run.pki["default"]
    for step, pki in real_run.pki.items():
        if step != "force":
            assert pki == first, f"{step}: the PKI changed"
    writes = [line for line in real_run.certs_log if line.startswith("wrote the lab PKI")]
    reuses = [line for line in real_run.certs_log if "reused it (nothing written)" in line]
    assert len(writes) == 1, real_run.certs_log
    assert len(reuses) >= len(FLIPS) - 1, real_run.certs_log


def test_certs_force_does_replace_the_keys(real_run: RealRun) -> None:
    """The sibling: the digest comparison above sees a regenerated key."""
    assert real_run.force is not None and real_run.force.code == 0, real_run.force
    before, after = real_run.pki["default"], real_run.pki["force"]
    keys = [path for path in before if path.endswith("key.pem")]
    assert all(after[path].digest != before[path].digest for path in keys)
    assert all(after[path].mode == 0o600 and after[path].uid == UID for path in keys)


def test_only_host_and_none_networks_and_every_container_on_the_host_network(real_run: RealRun) -> None:
    assert real_run.networks_during == {"host", "none"}
    assert real_run.matrix_modes == {name: "host" for name in MATRIX_SERVICES | DEFAULT_SERVICES}


def test_down_without_the_profile_leaves_the_profiles_servers_and_the_volume(real_run: RealRun) -> None:
    """Why the docs say `--profile matrix down -v`: the trap, and the sibling of the next test."""
    assert real_run.plain_down is not None and real_run.plain_down.code == 0, real_run.plain_down
    left = set(real_run.left_after_plain_down)
    assert left == {f"mtls-lab-e2e-{name}-1" for name in MATRIX_SERVICES} | {"mtls-lab-e2e_pki"}


def test_profile_down_v_leaves_no_container_and_no_volume(real_run: RealRun) -> None:
    assert real_run.down is not None and real_run.down.code == 0, real_run.down
    assert real_run.left_after_down == []
    assert networks() == {"host", "none"}


# --- real runs: start order with a slow server ----------------------------------------------------


@dataclass
class SlowStart:
    no_wait: Run
    waited: Run
    timeline: Timeline
    pki_first: dict[str, PkiFile]
    pki_after_down_up: dict[str, PkiFile]
    certs_log: list[str]


@pytest.fixture(scope="module")
def slow_start(real_run: RealRun) -> Iterator[SlowStart]:
    """A server that starts late: first a caller that does not wait, then the user's caller."""
    no_wait = Project("mtls-lab-e2e-slow", (HOST_NETWORK, SLOW_SERVER, NO_WAIT))
    waits = Project("mtls-lab-e2e-slow", (HOST_NETWORK, SLOW_SERVER))
    try:
        first = no_wait.sh(FLIPS[0].command)
        pki_first = no_wait.pki()
        no_wait.sh("docker compose down")  # the volume stays
        waited = waits.sh(FLIPS[0].command)
        certs_log = [line for _, line in waits.logs("certs")]
        seen = SlowStart(first, waited, _timeline(waits, waited), pki_first, waits.pki(), certs_log)
        waits.sh(DOWN)
    finally:
        waits.force_down()
    yield seen


def test_a_caller_that_does_not_wait_meets_a_server_not_yet_listening(slow_start: SlowStart) -> None:
    done = slow_start.no_wait
    assert done.code == 5, done
    assert done.verdict("caller").startswith("VERDICT: CONNECTION_ERROR"), done


def test_the_caller_waits_for_a_slowly_starting_server_to_be_healthy(slow_start: SlowStart) -> None:
    done, seen = slow_start.waited, slow_start.timeline
    assert done.code == FLIPS[0].exit_code, done
    assert done.verdict("caller").startswith(FLIPS[0].verdict), done
    assert (seen.listening - seen.server.started).total_seconds() >= SLOW_SECONDS - 0.5, "the server was not slow"
    assert seen.listening <= seen.caller.started


def test_an_up_after_down_reuses_the_pki_volume(slow_start: SlowStart) -> None:
    assert slow_start.pki_after_down_up == slow_start.pki_first
    assert any("reused it (nothing written)" in line for line in slow_start.certs_log), slow_start.certs_log
    assert not any(line.startswith("wrote the lab PKI") for line in slow_start.certs_log)
