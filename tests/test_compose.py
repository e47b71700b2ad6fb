"""docker-compose.yml and the Dockerfile, without a Docker engine.

- Structure: the services, healthchecks, depends_on conditions, ports and volumes docs/compose.md promises
  (and ``docker-compose config -q`` when Debian's docker-compose is installed, as .ci/run does).
- Parity: every service's command and environment, taken from the compose file, run on the host
  (tests/compose_host.py) must give the verdicts docs/compose.md shows for each documented flip. So the
  compose file cannot drift from the CLI.
- The Dockerfile copies what exists, installs this repository with pip, and runs ``mtls-lab`` as a
  non-root user.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import threading
import time
import tomllib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.compose_host import (
    COMPOSE_FILE,
    DOCKERFILE,
    ROOT,
    HostProject,
    container_port,
    interpolate,
    load_compose,
    variables_used,
)

DEFAULT_SERVICES = {"certs", "server", "caller"}
MATRIX_SERVICES = {"server-tls", "server-mtls", "server-mixed", "caller-matrix"}
SERVERS = {"server", "server-tls", "server-mtls", "server-mixed"}


@dataclass(frozen=True)
class Flip:
    """One documented `VAR=value docker compose up ...` and what the caller must print."""

    variables: dict[str, str]
    exit_code: int
    verdict: str  # the caller's VERDICT line starts with this

    @property
    def id(self) -> str:
        return " ".join(f"{k}={v}" for k, v in self.variables.items()) or "default"


FLIPS = [
    Flip({}, 1, "VERDICT: HTTP_ERROR HTTP 403 no_client_certificate"),
    Flip({"SERVER_MODE": "mtls"}, 0, "VERDICT: ACCEPTED"),
    Flip({"SERVER_MODE": "mixed"}, 0, "VERDICT: ACCEPTED"),
    Flip({"SERVER_MODE": "mixed", "SERVER_TRUST": "ca/impostor-root.pem"}, 1, "VERDICT: HTTP_ERROR HTTP 403"),
    Flip(
        {"SERVER_MODE": "mtls", "SERVER_TRUST": "ca/impostor-root.pem"},
        3,
        "VERDICT: TLS_ALERT alert certificate_required",
    ),
    # the caller's variables take effect: the Java model would send nothing (certificate_required)
    Flip(
        {"SERVER_MODE": "mtls", "CALLER_IDENTITY": "impostor", "CALLER_BEHAVIOR": "openssl"},
        3,
        "VERDICT: TLS_ALERT alert unknown_ca",
    ),
]


# --- structure ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_compose()


def test_the_services_and_the_matrix_profile(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == DEFAULT_SERVICES | MATRIX_SERVICES
    for name in DEFAULT_SERVICES:
        assert "profiles" not in services[name], f"{name} must run on a plain `docker compose up`"
    for name in MATRIX_SERVICES:
        assert services[name]["profiles"] == ["matrix"]


def test_every_service_runs_the_one_image_built_here(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        assert service["build"] == ".", name
        assert service["image"] == "ajo-mtls-lab:local", name
        assert "entrypoint" not in service, f"{name}: keep the Dockerfile's mtls-lab entrypoint"
        assert isinstance(service["command"], list) and service["command"], f"{name}: exec-form command"


def test_ports_are_published_on_loopback_only(compose: dict[str, Any]) -> None:
    published = []
    for name in SERVERS:
        service = compose["services"][name]
        (mapping,) = service["ports"]
        host_ip, host_port, inside = interpolate(mapping, {}).split(":")
        assert host_ip == "127.0.0.1", name
        # the container port is the one the server listens on
        env = service.get("environment", {})
        assert int(inside) == container_port(service) == int(env.get("MTLS_LAB_PORT", 8443)), name
        assert env.get("MTLS_LAB_HOST") == "0.0.0.0", f"{name}: must listen beyond the container's loopback"
        published.append(host_port)
    assert len(set(published)) == len(published), "two services publish the same host port"
    for name in set(compose["services"]) - SERVERS:
        assert "ports" not in compose["services"][name], name


def test_healthchecks_and_start_order(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name in SERVERS:
        check = services[name]["healthcheck"]
        assert check["test"][:3] == ["CMD", "mtls-lab", "health"], name
        assert {"interval", "timeout", "retries", "start_period"} <= set(check), name
        assert services[name]["depends_on"] == {"certs": {"condition": "service_completed_successfully"}}, name
    assert services["caller"]["depends_on"] == {"server": {"condition": "service_healthy"}}
    assert services["caller-matrix"]["depends_on"] == {
        name: {"condition": "service_healthy"} for name in ("server-tls", "server-mtls", "server-mixed")
    }
    for name, service in services.items():
        for dependency, condition in service.get("depends_on", {}).items():
            if condition["condition"] == "service_healthy":
                assert "healthcheck" in services[dependency], f"{name} waits for {dependency}'s health"


def test_the_pki_volume_is_written_once_and_read_only_elsewhere(compose: dict[str, Any]) -> None:
    assert set(compose["volumes"]) == {"pki"}
    services = compose["services"]
    assert services["certs"]["volumes"] == ["pki:/lab/certs"]
    assert "--if-missing" in services["certs"]["command"]
    for name in set(services) - {"certs"}:
        assert services[name]["volumes"] == ["pki:/lab/certs:ro"], name


def test_the_default_server_is_the_community_questions_misconfiguration(compose: dict[str, Any]) -> None:
    env = compose["services"]["server"]["environment"]
    assert interpolate(env["MTLS_LAB_MODE"], {}) == "tls"
    assert interpolate(env["MTLS_LAB_MODE"], {"SERVER_MODE": "mtls"}) == "mtls"
    assert interpolate(env["MTLS_LAB_TRUST"], {}) == "ca/adobe-like-root.pem"


def test_every_variable_is_documented() -> None:
    header = COMPOSE_FILE.read_text().split("\nx-lab:")[0]
    page = (ROOT / "docs" / "compose.md").read_text()
    for name in variables_used():
        assert re.search(rf"^#\s+{name}\s", header, re.MULTILINE), f"{name} is not described at the top"
        assert name in page, f"{name} is not in docs/compose.md"


@pytest.mark.parametrize(
    ("text", "variables", "expected"),
    [
        ("${A:-x}", {}, "x"),
        ("${A:-x}", {"A": ""}, "x"),
        ("${A-x}", {"A": ""}, ""),
        ("${A:-x}", {"A": "y"}, "y"),
        ("$A/${B}", {"A": "1", "B": "2"}, "1/2"),
        ("$$A", {"A": "1"}, "$A"),
    ],
)
def test_interpolation_follows_compose(text: str, variables: dict[str, str], expected: str) -> None:
    assert interpolate(text, variables) == expected


def test_unsupported_interpolation_is_refused() -> None:
    with pytest.raises(ValueError, match="unsupported"):
        interpolate("${A:?required}", {})


DOCKER_COMPOSE = shutil.which("docker-compose")


EVERY_VARIABLE = {
    "SERVER_MODE": "mixed",
    "SERVER_TRUST": "ca/impostor-root.pem,ca/adobe-like-root.pem",
    "SERVER_ADVERTISE_CA": "none",
    "SERVER_TLS_MAX": "1.2",
    "SERVER_PORT": "9443",
    "CALLER_IDENTITY": "impostor",
    "CALLER_TLS": "1.2",
    "CALLER_BEHAVIOR": "openssl",
}


@pytest.mark.skipif(DOCKER_COMPOSE is None, reason="docker-compose is not installed (.ci/run installs it)")
@pytest.mark.parametrize("variables", [{}, EVERY_VARIABLE], ids=["defaults", "every-variable-set"])
def test_docker_compose_validates_and_resolves_the_same(variables: dict[str, str], tmp_path: Path) -> None:
    """docker-compose's own `config` (no engine needed) accepts the file and agrees with our interpolation."""
    assert set(EVERY_VARIABLE) == variables_used()
    done = subprocess.run(
        [str(DOCKER_COMPOSE), "-f", str(COMPOSE_FILE), "--profile", "matrix", "config"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), **variables},
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    resolved = yaml.safe_load(done.stdout)["services"]
    ours = load_compose()["services"]
    assert set(resolved) == set(ours)
    for name, service in ours.items():
        expected = {k: interpolate(str(v), variables) for k, v in service.get("environment", {}).items()}
        assert {k: str(v) for k, v in resolved[name].get("environment", {}).items()} == expected, name
        assert resolved[name]["command"] == service["command"], name
        if "ports" in service:
            (mapping,) = resolved[name]["ports"]
            assert mapping.removesuffix("/tcp") == interpolate(service["ports"][0], variables), name


@pytest.mark.skipif(DOCKER_COMPOSE is None, reason="docker-compose is not installed (.ci/run installs it)")
def test_docker_compose_rejects_a_broken_file(tmp_path: Path) -> None:
    """The validator is real: the same check on a broken copy fails."""
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(COMPOSE_FILE.read_text().replace("condition: service_healthy", "condition: when_ready", 1))
    done = subprocess.run(
        [str(DOCKER_COMPOSE), "-f", str(broken), "config", "-q"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode != 0


# --- the Dockerfile -------------------------------------------------------------------------------


def _instructions() -> list[tuple[str, str]]:
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def test_dockerfile_copies_what_exists_and_what_the_commands_use(compose: dict[str, Any]) -> None:
    copied = []
    for kind, rest in _instructions():
        if kind == "COPY":
            *sources, _dest = rest.split()
            copied += [s.rstrip("/") for s in sources]
    for source in copied:
        assert (ROOT / source).exists(), f"COPY {source}: no such path in the repository"
    folders = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"].values()
    for folder in folders:
        assert folder in copied, f"the package folder {folder} is not copied into the image"
    assert {"pyproject.toml", "README.md"} <= set(copied)
    for service in compose["services"].values():
        for word in service["command"]:
            if re.match(r"^[\w-]+/[\w./-]+\.json$", word):
                assert word.split("/")[0] in copied and (ROOT / word).is_file(), word


def test_dockerfile_installs_this_repository_and_runs_mtls_lab_unprivileged() -> None:
    steps = _instructions()
    base = next(rest for kind, rest in steps if kind == "FROM")
    assert re.fullmatch(r"python:3\.1[1-9]-slim(-\w+)?", base), base
    installs = [rest for kind, rest in steps if kind == "RUN" and "pip install" in rest]
    assert len(installs) == 1
    words = installs[0].split("&&")[0].split()
    assert words[-1] == ".", "pip installs the copied repository, not a PyPI release"
    assert "ajo-mtls-lab" not in installs[0]
    assert "--only-binary=:all:" in words, "dependencies as wheels only: nothing compiled in the image"
    assert next(rest for kind, rest in steps if kind == "ENTRYPOINT") == '["mtls-lab"]'
    users = [rest for kind, rest in steps if kind == "USER"]
    assert users and users[-1] not in ("root", "0"), "the image must end as a non-root user"
    assert [i for i, (kind, _) in enumerate(steps) if kind == "USER"][-1] > max(
        i for i, (kind, _) in enumerate(steps) if kind == "RUN"
    ), "USER comes after the last RUN"
    # the volume's mount point exists in the image and belongs to that user (Docker copies it to the volume)
    assert any("mkdir -p /lab/certs" in rest and f"chown -R {users[-1]}:" in rest for kind, rest in steps)


def test_dockerfile_and_make_install_the_same_project() -> None:
    """The image, `make` (the README's two commands) and .ci/run all install this pyproject with pip."""
    makefile = (ROOT / "Makefile").read_text()
    assert "pip install --quiet -e '.[test]'" in makefile
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    assert "pip install --no-cache-dir --only-binary=:all: ." in DOCKERFILE.read_text()


def test_dockerignore_keeps_keys_and_local_state_out() -> None:
    ignored = (ROOT / ".dockerignore").read_text().split()
    for entry in (".git", ".venv", "certs/ca", "certs/server", "certs/clients", "**/*.pem"):
        assert entry in ignored, entry


# --- parity: the compose services, run on the host ------------------------------------------------


@dataclass
class Stack:
    """Everything the parity fixture started and saw."""

    certs_runs: list[subprocess.CompletedProcess[str]] = field(default_factory=list)
    key_digest_before: str = ""
    key_digest_after: str = ""
    callers: dict[str, subprocess.CompletedProcess[str]] = field(default_factory=dict)
    health: dict[str, subprocess.CompletedProcess[str]] = field(default_factory=dict)
    server_lines: dict[str, str] = field(default_factory=dict)
    matrix: subprocess.CompletedProcess[str] | None = None
    health_down: subprocess.CompletedProcess[str] | None = None


def _digest(volume: Path) -> str:
    keys = sorted(volume.rglob("key.pem"))
    assert keys
    return hashlib.sha256(b"".join(k.read_bytes() for k in keys)).hexdigest()


def _drain(process: subprocess.Popen[str]) -> threading.Thread:
    """Keep reading a server's log so a full pipe never blocks it."""
    assert process.stdout is not None
    stream = process.stdout
    thread = threading.Thread(target=lambda: [None for _ in stream], daemon=True)
    thread.start()
    return thread


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """certs, then every flip's server and the profile's three servers in parallel, then the callers."""
    root = tmp_path_factory.mktemp("compose")
    seen = Stack()
    base = HostProject(root)
    base.prepare_volumes()
    seen.certs_runs.append(base.run("certs"))
    seen.key_digest_before = _digest(base.volume_dir("pki"))
    seen.certs_runs.append(base.run("certs"))
    seen.key_digest_after = _digest(base.volume_dir("pki"))

    projects = {flip.id: HostProject(root, flip.variables) for flip in FLIPS}
    # flips that differ only on the caller's side share their server, as they would in compose
    owners: dict[str, HostProject] = {}
    for project in projects.values():
        owners.setdefault(_server_key(project), project)
    matrix = HostProject(root)
    servers = [(p, "server", key) for key, p in projects.items() if p in owners.values()]
    servers += [(matrix, name, name) for name in ("server-tls", "server-mtls", "server-mixed")]
    processes = [(p, name, key, p.start(name)) for p, name, key in servers]
    drains = []
    try:
        for project, name, key, process in processes:
            seen.server_lines[key] = project.wait_started(name, process)
            drains.append(_drain(process))
        for project in projects.values():
            project.ports = owners[_server_key(project)].ports
        with ThreadPoolExecutor(max_workers=8) as pool:
            checks = {key: pool.submit(_healthy, p, name) for p, name, key, _ in processes}
            seen.health = {key: future.result() for key, future in checks.items()}
            calls = {key: pool.submit(p.run, "caller") for key, p in projects.items()}
            matrix_run = pool.submit(matrix.run, "caller-matrix")
            seen.callers = {key: future.result() for key, future in calls.items()}
            seen.matrix = matrix_run.result()
    finally:
        for *_, process in processes:
            process.terminate()
        for *_, process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for thread in drains:
            thread.join(timeout=5)
        for *_, process in processes:
            assert process.stdout is not None
            process.stdout.close()
    # the same healthcheck, once the server is gone: not ready
    down = projects["default"].healthcheck("server")
    seen.health_down = subprocess.run(down, capture_output=True, text=True, timeout=30, cwd=ROOT)
    yield seen


def _server_key(project: HostProject) -> str:
    return repr(sorted(project.service_environment("server").items()))


def _healthy(project: HostProject, name: str) -> subprocess.CompletedProcess[str]:
    """Run the compose healthcheck until it passes, as Docker would (a few tries)."""
    for _ in range(20):
        done = subprocess.run(project.healthcheck(name), capture_output=True, text=True, timeout=30, cwd=ROOT)
        if done.returncode == 0:
            break
        time.sleep(0.1)
    return done


def test_certs_service_generates_once_and_never_overwrites(stack: Stack) -> None:
    first, second = stack.certs_runs
    assert first.returncode == 0 and "wrote the lab PKI" in first.stdout, first.stdout + first.stderr
    assert second.returncode == 0 and "reused it (nothing written)" in second.stdout
    assert stack.key_digest_before == stack.key_digest_after


def test_the_healthcheck_passes_in_every_mode(stack: Stack) -> None:
    assert len(stack.health) == 8  # five distinct servers of the flips, three of the profile
    for done in stack.health.values():
        assert done.returncode == 0, done.stdout + done.stderr
        assert done.stdout.startswith(("healthy:", "tls_rejected:")), done.stdout
    assert stack.health["default"].stdout.startswith("healthy:") and "(mode tls)" in stack.health["default"].stdout
    assert "(mode mtls)" in stack.health["server-mtls"].stdout, "mtls: the probe's certificate was accepted"
    rejected = stack.health["SERVER_MODE=mtls SERVER_TRUST=ca/impostor-root.pem"].stdout
    assert rejected.startswith("tls_rejected:") and "alert certificate_required" in rejected


def test_the_healthcheck_fails_when_the_server_is_down(stack: Stack) -> None:
    assert stack.health_down is not None
    assert stack.health_down.returncode == 5, stack.health_down.stdout
    assert stack.health_down.stdout.startswith("down:")


def test_the_default_server_says_what_it_is(stack: Stack) -> None:
    assert "mode=tls" in stack.server_lines["default"]
    assert "mode=mtls" in stack.server_lines["SERVER_MODE=mtls"]


@pytest.mark.parametrize("flip", FLIPS, ids=lambda f: f.id)
def test_each_documented_flip_gives_its_verdict(stack: Stack, flip: Flip) -> None:
    done = stack.callers[flip.id]
    assert done.returncode == flip.exit_code, done.stdout + done.stderr
    verdict = next(line for line in done.stdout.splitlines() if line.startswith("VERDICT: "))
    assert verdict.startswith(flip.verdict), verdict
    assert ("  why: " in done.stdout and "  fix: " in done.stdout) or flip.exit_code == 0


def test_the_profile_prints_the_matrix_against_three_servers(stack: Stack) -> None:
    done = stack.matrix
    assert done is not None
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr
    rows = [line for line in done.stdout.splitlines() if re.match(r"^(tls|mtls|mixed)/", line)]
    assert {row.split("/")[0] for row in rows} == {"tls", "mtls", "mixed"}
    assert len(rows) >= 40
    assert re.search(rf"^{len(rows)} scenarios, {len(rows)} as expected, 0 mismatched", done.stdout, re.MULTILINE)


@pytest.mark.parametrize("flip", FLIPS, ids=lambda f: f.id)
def test_the_compose_page_shows_each_flip_with_its_verdict_and_exit_code(flip: Flip) -> None:
    readme = (ROOT / "docs" / "compose.md").read_text()
    first = f"| `{flip.id}` |" if flip.variables else "| (none) |"
    (line,) = [line for line in readme.splitlines() if line.startswith(first)]
    assert f"`{flip.verdict.removeprefix('VERDICT: ')}" in line, line
    assert line.endswith(f"| {flip.exit_code} |"), line
