"""docker-compose.yml, the Dockerfile and docs/compose.md, without a Docker engine.

- Structure: the services, healthchecks, depends_on conditions, ports and volumes docs/compose.md
  promises; the Dockerfile; the host-network override changes networking only.
- Docs: the flip table and the commands are the ones tests/test_compose_real.py runs.
- Compose v2 (``docker compose config``; needs Compose, not an engine): the file is valid, a broken copy
  is not, and with the override it resolves to the same services but for networking.

tests/test_compose_real.py runs the documented commands in real containers (``make compose-test``).
"""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.compose.commands import (
    DEFAULT_SERVICES,
    DOCS_TEXT,
    DOWN,
    FLIPS,
    FORCE_CERTS,
    MATRIX,
    MATRIX_SERVICES,
    RUN_CALLER,
    SERVERS,
    SHOWN,
    UID,
    Flip,
    documented_commands,
)
from tests.compose.project import (
    COMPOSE_FILE,
    DOCKERFILE,
    E2E,
    HOST_NETWORK,
    NO_WAIT,
    ROOT,
    SLOW_SECONDS,
    SLOW_SERVER,
    Project,
    Tagged,
    compose_cli,
    interpolate,
    load_compose,
    variables_used,
)

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


def test_each_server_listens_on_the_port_it_is_published_on_loopback_only(compose: dict[str, Any]) -> None:
    """Published on 127.0.0.1 only; inside, each server has its own port, so host networking works too."""
    published, inside_ports = [], []
    for name in SERVERS:
        service = compose["services"][name]
        (mapping,) = service["ports"]
        host_ip, host_port, inside = interpolate(mapping, {}).split(":")
        assert host_ip == "127.0.0.1", name
        env = service["environment"]
        assert env["MTLS_LAB_HOST"] == "0.0.0.0", f"{name}: must listen beyond the container's loopback"
        assert int(inside) == int(env["MTLS_LAB_PORT"]) == int(host_port), name
        check_url = service["healthcheck"]["test"][service["healthcheck"]["test"].index("--url") + 1]
        assert check_url == f"https://127.0.0.1:{inside}", f"{name}: the healthcheck asks another port"
        published.append(host_port)
        inside_ports.append(inside)
    assert len(set(published)) == len(published), "two services publish the same host port"
    assert len(set(inside_ports)) == len(inside_ports), "two servers listen on the same port"
    for name in set(compose["services"]) - SERVERS:
        assert "ports" not in compose["services"][name], name


def test_the_callers_call_their_servers_on_their_ports(compose: dict[str, Any]) -> None:
    services = compose["services"]
    urls = [w for w in services["caller"]["command"] + services["caller-matrix"]["command"] if "https://" in w]
    assert urls
    for url in urls:
        host, port = re.search(r"https://([\w-]+):(\d+)", url).groups()  # type: ignore[union-attr]
        assert services[host]["environment"]["MTLS_LAB_PORT"] == port, url


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


def test_the_pki_volume_is_written_once_and_read_only_elsewhere(compose: dict[str, Any]) -> None:
    assert set(compose["volumes"]) == {"pki"}
    services = compose["services"]
    assert services["certs"]["volumes"] == ["pki:/lab/certs"]
    assert "--if-missing" in services["certs"]["command"]
    for name in set(services) - {"certs"}:
        assert services[name]["volumes"] == ["pki:/lab/certs:ro"], name


def test_every_variable_is_documented() -> None:
    header = COMPOSE_FILE.read_text().split("\nx-lab:")[0]
    for name in variables_used():
        assert re.search(rf"^#\s+{name}\s", header, re.MULTILINE), f"{name} is not described at the top"
        assert f"`{name}`" in DOCS_TEXT, f"{name} is not in docs/compose.md"


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


# --- the override and the test overlays -----------------------------------------------------------

NETWORKING = {"network_mode", "extra_hosts", "ports"}


def test_the_host_network_override_changes_networking_only(compose: dict[str, Any]) -> None:
    override = load_compose(HOST_NETWORK)
    assert set(override) - {k for k in override if k.startswith("x-")} == {"services"}, "services only"
    assert set(override["services"]) == set(compose["services"]), "every service, and no new one"
    servers = compose["services"]
    for name, service in override["services"].items():
        assert set(service) <= NETWORKING | {"build"}, f"{name}: {sorted(set(service) - NETWORKING)}"
        assert service["build"] == {"network": "host"}, f"{name}: the builder's network, nothing else"
        assert service["network_mode"] == "host", name
        assert service["extra_hosts"] == [f"{server}:127.0.0.1" for server in sorted(SERVERS, key=len)], name
        assert ("ports" in service) == ("ports" in servers[name]), name
        if "ports" in service:
            assert service["ports"] == Tagged("!reset", []), f"{name}: no port published on the host network"


def test_the_start_order_overlays_change_what_they_say_and_nothing_else() -> None:
    slow = load_compose(SLOW_SERVER)["services"]
    assert list(slow) == ["server"] and list(slow["server"]) == ["entrypoint"]
    entrypoint = slow["server"]["entrypoint"]
    assert entrypoint[:2] == ["sh", "-c"] and f"sleep {SLOW_SECONDS} && exec mtls-lab " in entrypoint[2]
    assert load_compose(NO_WAIT)["services"] == {"caller": {"depends_on": {"server": {"condition": "service_started"}}}}


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
    steps_ = _instructions()
    base = next(rest for kind, rest in steps_ if kind == "FROM")
    assert re.fullmatch(r"python:3\.1[1-9]-slim(-\w+)?", base), base
    installs = [rest for kind, rest in steps_ if kind == "RUN" and "pip install" in rest]
    assert len(installs) == 1
    words = installs[0].split("&&")[0].split()
    assert words[-1] == ".", "pip installs the copied repository, not a PyPI release"
    assert "ajo-mtls-lab" not in installs[0]
    assert "--only-binary=:all:" in words, "dependencies as wheels only: nothing compiled in the image"
    assert next(rest for kind, rest in steps_ if kind == "ENTRYPOINT") == '["mtls-lab"]'
    users = [rest for kind, rest in steps_ if kind == "USER"]
    assert users and users[-1] not in ("root", "0"), "the image must end as a non-root user"
    assert [i for i, (kind, _) in enumerate(steps_) if kind == "USER"][-1] > max(
        i for i, (kind, _) in enumerate(steps_) if kind == "RUN"
    ), "USER comes after the last RUN"
    # the volume's mount point exists in the image and belongs to that user (Docker copies it to the volume)
    assert any("mkdir -p /lab/certs" in rest and f"chown -R {users[-1]}:" in rest for kind, rest in steps_)
    assert any(f"--uid {UID}" in rest for kind, rest in steps_ if kind == "RUN")


def test_dockerignore_keeps_keys_and_local_state_out() -> None:
    ignored = (ROOT / ".dockerignore").read_text().split()
    for entry in (".git", ".venv", "certs/ca", "certs/server", "certs/clients", "**/*.pem"):
        assert entry in ignored, entry


# --- the docs -------------------------------------------------------------------------------------


@pytest.mark.parametrize("flip", FLIPS, ids=lambda f: f.id)
def test_the_docs_show_each_flip_with_its_verdict_and_exit_code(flip: Flip) -> None:
    first = f"| `{flip.id}` |" if flip.variables else "| (none) |"
    (line,) = [line for line in DOCS_TEXT.splitlines() if line.startswith(first)]
    assert f"`{flip.verdict.removeprefix('VERDICT: ')}" in line, line
    assert line.endswith(f"| {flip.exit_code} |"), line


def test_the_real_run_covers_every_documented_command() -> None:
    run = {flip.command for flip in FLIPS} | {RUN_CALLER, MATRIX, DOWN}
    assert set(documented_commands()) <= run
    assert set(documented_commands((ROOT / "README.md").read_text())) <= run
    assert FORCE_CERTS in " ".join(DOCS_TEXT.split())


def test_the_docs_show_the_output_of_the_default_run_and_of_adobes_advice() -> None:
    assert [flip.id for flip in SHOWN] == ["default", "SERVER_MODE=mtls"]


# --- Compose v2 itself, no engine needed ----------------------------------------------------------


@pytest.fixture(scope="module")
def compose_v2() -> None:
    if not E2E and not compose_cli():
        pytest.skip("Compose v2 is not installed: `make compose-test` installs it and runs these")


def _config(
    *files: Path, variables: dict[str, str] | None = None, cwd: Path = ROOT
) -> subprocess.CompletedProcess[str]:
    args = [arg for f in files for arg in ("-f", str(f))]
    return subprocess.run(
        ["docker", "compose", *args, "--profile", "matrix", "config", "--format", "json"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**Project("config").env, "COMPOSE_FILE": "", **(variables or {})},
        cwd=cwd,
    )


@pytest.mark.usefixtures("compose_v2")
def test_compose_accepts_the_file_and_resolves_the_variables() -> None:
    every = {
        "SERVER_MODE": "mixed",
        "SERVER_TRUST": "ca/impostor-root.pem,ca/adobe-like-root.pem",
        "SERVER_ADVERTISE_CA": "none",
        "SERVER_TLS_MAX": "1.2",
        "SERVER_PORT": "9443",
        "CALLER_IDENTITY": "impostor",
        "CALLER_TLS": "1.2",
        "CALLER_BEHAVIOR": "openssl",
    }
    assert set(every) == variables_used()
    for variables in ({}, every):
        done = _config(COMPOSE_FILE, variables=variables)
        assert done.returncode == 0, done.stderr
        resolved = yaml.safe_load(done.stdout)["services"]
        for name, service in load_compose()["services"].items():
            expected = {k: interpolate(str(v), variables) for k, v in service.get("environment", {}).items()}
            assert {k: str(v or "") for k, v in resolved[name].get("environment", {}).items()} == expected, name
    assert resolved["server"]["ports"][0]["published"] == "9443"


@pytest.mark.usefixtures("compose_v2")
def test_compose_rejects_a_broken_file(tmp_path: Path) -> None:
    """The validator is real: the same check on a broken copy fails."""
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(COMPOSE_FILE.read_text().replace("condition: service_healthy", "condition: when_ready", 1))
    done = _config(broken, cwd=tmp_path)
    assert done.returncode != 0 and "services.caller.depends_on.server.condition" in done.stderr, done.stderr


@pytest.mark.usefixtures("compose_v2")
def test_with_the_override_compose_resolves_the_same_services_but_for_networking() -> None:
    """Images, commands, environment, volumes, healthchecks, dependencies, init: all the user's."""
    mine, theirs = _config(COMPOSE_FILE), _config(COMPOSE_FILE, HOST_NETWORK)
    assert mine.returncode == 0 and theirs.returncode == 0, mine.stderr + theirs.stderr
    users, ours = yaml.safe_load(mine.stdout), yaml.safe_load(theirs.stdout)
    assert set(users["volumes"]) == set(ours["volumes"]) == {"pki"}
    assert set(users["services"]) == set(ours["services"])
    for name, service in users["services"].items():
        theirs_service = ours["services"][name]
        assert theirs_service["network_mode"] == "host" and "ports" not in theirs_service, name
        assert theirs_service["build"].pop("network") == "host", name
        strip = NETWORKING | {"networks"}
        assert {k: v for k, v in theirs_service.items() if k not in strip} == {
            k: v for k, v in service.items() if k not in strip
        }, name
    # the user's file alone: Docker's own default network, and published ports
    assert all("networks" in s for s in users["services"].values())
    assert all("ports" in users["services"][name] for name in SERVERS)


def test_ci_runs_the_compose_tests_for_real() -> None:
    """No silent skip: .ci/run calls the script, which runs the real tests with the engine it started."""
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^make compose-test$", ci, re.MULTILINE), "CI must run `make compose-test`, failures included"
    script = (ROOT / "scripts" / "compose-test.sh").read_text()
    assert "MTLS_LAB_COMPOSE_E2E=1" in script and "tests/test_compose_real.py" in script
    assert "--bridge=none" in script and "--iptables=false" in script
