"""docker-compose.yml as data, and a compose project run through the real ``docker compose``.

The real runs need a Docker engine and Compose v2: ``scripts/compose-test.sh`` (``make compose-test``)
starts its own engine, installs Compose, and sets ``MTLS_LAB_COMPOSE_E2E=1`` for the tests. Every
command runs the way a user types it (``VAR=value docker compose ...`` through bash, from the
repository), with the host-network override added through ``COMPOSE_FILE``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCS = ROOT / "docs" / "compose.md"
HOST_NETWORK = HERE / "host-network.yml"
SLOW_SERVER = HERE / "slow-server.yml"
NO_WAIT = HERE / "no-wait.yml"
SLOW_SECONDS = 6  # slow-server.yml's sleep

E2E = os.environ.get("MTLS_LAB_COMPOSE_E2E") == "1"


# --- the file as data -----------------------------------------------------------------------------


class _ComposeLoader(yaml.SafeLoader):
    """YAML with compose's ``!reset`` and ``!override`` tags (kept as ``Tagged`` values)."""


@dataclass(frozen=True)
class Tagged:
    tag: str
    value: Any


def _tagged(loader: yaml.SafeLoader, node: yaml.Node) -> Tagged:
    if isinstance(node, yaml.SequenceNode):
        return Tagged(node.tag, loader.construct_sequence(node))
    if isinstance(node, yaml.MappingNode):
        return Tagged(node.tag, loader.construct_mapping(node))
    return Tagged(node.tag, loader.construct_scalar(node))  # type: ignore[arg-type]


for _tag in ("!reset", "!override"):
    _ComposeLoader.add_constructor(_tag, _tagged)


def load_compose(path: Path = COMPOSE_FILE) -> dict[str, Any]:
    data = yaml.load(path.read_text(), Loader=_ComposeLoader)  # a SafeLoader subclass
    assert isinstance(data, dict)
    return data


# ${VAR}, ${VAR:-default}, ${VAR-default}, $VAR and $$: the forms the file may use.
_INTERPOLATION = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?-)(?P<default>[^}]*))?\}"
    r"|(?P<bare>[A-Za-z_][A-Za-z0-9_]*)|(?P<invalid>))"
)


def interpolate(text: str, variables: Mapping[str, str]) -> str:
    """Compose's variable interpolation (the subset above); anything else is an error."""

    def one(match: re.Match[str]) -> str:
        if match.group("escaped"):
            return "$"
        if match.group("invalid") is not None:
            raise ValueError(f"unsupported interpolation in {text!r}")
        name = match.group("braced") or match.group("bare")
        value = variables.get(name)
        if match.group("op") == ":-" and not value:
            return match.group("default")
        if match.group("op") == "-" and value is None:
            return match.group("default")
        return value or ""

    return _INTERPOLATION.sub(one, text)


def variables_used() -> set[str]:
    """Every variable the compose file interpolates."""
    text = COMPOSE_FILE.read_text()
    return {m.group("braced") or m.group("bare") for m in _INTERPOLATION.finditer(text) if not m.group("escaped")}


# --- the real thing -------------------------------------------------------------------------------


def compose_cli() -> bool:
    """Is Compose v2 installed (``docker compose``)? ``config`` needs no engine."""
    if shutil.which("docker") is None:
        return False
    done = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True, timeout=30)
    return done.returncode == 0 and "v2." in done.stdout


@dataclass(frozen=True)
class Run:
    """One command line, as a user typed it, and what it did."""

    command: str
    code: int
    output: str  # stdout and stderr, interleaved

    def lines(self, service: str | None = None) -> list[str]:
        """The output's lines; with ``service``, that service's lines without compose's prefix."""
        if service is None:
            return self.output.splitlines()
        mine = re.compile(rf"^{re.escape(service)}-\d+\s+\| ?")
        return [mine.sub("", line) for line in self.output.splitlines() if mine.match(line)]

    def verdict(self, service: str | None = None) -> str:
        found = [line for line in self.lines(service) if line.startswith("VERDICT: ")]
        assert len(found) == 1, f"`{self.command}` printed {len(found)} VERDICT lines:\n{self.output}"
        return found[0]

    def __str__(self) -> str:
        return f"$ {self.command}\n(exit {self.code})\n{self.output}"


@dataclass(frozen=True)
class Container:
    """What ``docker inspect`` says of one container."""

    name: str
    data: dict[str, Any]

    @property
    def started(self) -> datetime:
        return timestamp(self.data["State"]["StartedAt"])

    @property
    def finished(self) -> datetime:
        return timestamp(self.data["State"]["FinishedAt"])

    @property
    def exit_code(self) -> int:
        return int(self.data["State"]["ExitCode"])

    @property
    def network_mode(self) -> str:
        return str(self.data["HostConfig"]["NetworkMode"])


def timestamp(text: str) -> datetime:
    """Docker's RFC 3339 time with nanoseconds, to the microsecond."""
    return datetime.fromisoformat(re.sub(r"(\.\d{6})\d*", r"\1", text).replace("Z", "+00:00"))


@dataclass(frozen=True)
class PkiFile:
    mode: int
    uid: int
    digest: str  # sha256 of a file's bytes; "" for a directory
    mtime_ns: int


def docker(*args: str, timeout: float = 60) -> str:
    done = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"docker {' '.join(args)}: {done.stderr}"
    return done.stdout


@dataclass
class Project:
    """A compose project: the user's file plus overrides, run from the repository like a user would."""

    name: str
    overrides: tuple[Path, ...] = (HOST_NETWORK,)

    @property
    def env(self) -> dict[str, str]:
        files = [COMPOSE_FILE, *self.overrides]
        return {
            **{k: v for k, v in os.environ.items() if not k.startswith(("SERVER_", "CALLER_", "COMPOSE_"))},
            "COMPOSE_FILE": os.pathsep.join(str(f.relative_to(ROOT)) for f in files),
            "COMPOSE_PROJECT_NAME": self.name,
            "COMPOSE_ANSI": "never",
            "COMPOSE_PROGRESS": "quiet",
        }

    def sh(self, command: str, timeout: float = 240) -> Run:
        """Run one documented command line through bash, from the repository."""
        done = subprocess.run(
            ["bash", "-c", command],
            cwd=ROOT,
            env=self.env,
            stdin=subprocess.DEVNULL,  # as in CI: no terminal, so `run` allocates none
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout,
        )
        return Run(command, done.returncode, done.stdout)

    def inspect(self, *services: str) -> dict[str, Container]:
        """The services' containers (compose names them ``<project>-<service>-1``), in one call."""
        data = json.loads(docker("inspect", *(f"{self.name}-{service}-1" for service in services)))
        return {service: Container(service, one) for service, one in zip(services, data, strict=True)}

    def logs(self, service: str) -> list[tuple[datetime, str]]:
        """A service's log lines with the time Docker received each."""
        done = subprocess.run(
            ["docker", "logs", "--timestamps", f"{self.name}-{service}-1"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stdout
        found = []
        for line in done.stdout.splitlines():
            when, _, rest = line.partition(" ")
            found.append((timestamp(when), rest))
        return found

    def containers(self, *labels: str) -> list[str]:
        """The project's containers (all, or those with these ``key=value`` labels too)."""
        labels = (f"com.docker.compose.project={self.name}", *labels)
        filters = [arg for label in labels for arg in ("--filter", f"label={label}")]
        return docker("ps", "--all", *filters, "--format", "{{.Names}}").split()

    def volumes(self) -> list[str]:
        return docker("volume", "ls", "--filter", f"label=com.docker.compose.project={self.name}", "--quiet").split()

    def pki(self) -> dict[str, PkiFile]:
        """Every file and folder in the ``pki`` volume, read on the engine's side."""
        root = Path(docker("volume", "inspect", f"{self.name}_pki", "--format", "{{.Mountpoint}}").strip())
        found = {}
        for path in sorted([root, *root.rglob("*")]):
            info = path.lstat()
            digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else ""
            found[str(path.relative_to(root))] = PkiFile(info.st_mode & 0o7777, info.st_uid, digest, info.st_mtime_ns)
        return found

    def force_down(self) -> None:
        """The clean-up that always runs: every container and the volume of this project, gone."""
        self.sh("docker compose --profile matrix down --volumes --remove-orphans --timeout 5")


def networks() -> set[str]:
    return set(docker("network", "ls", "--format", "{{.Name}}").split())
