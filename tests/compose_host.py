"""Run docker-compose.yml's services on the host, for the parity tests (no Docker engine in CI).

Each service becomes the process its container would run: the Dockerfile's ENTRYPOINT plus the
service's ``command``, with its ``environment`` after compose interpolation of the given variables.
What only exists inside compose is translated, and nothing else:

- a named volume's mount point (``/lab/certs``) becomes a directory under the test's temp dir;
- a server listens on 127.0.0.1 on a free port (``MTLS_LAB_PORT=0``) instead of its container port on
  0.0.0.0, and ``https://<service>:<container port>`` in other services becomes that address, as does
  ``https://127.0.0.1:<container port>`` in the server's own healthcheck (it runs inside the server's
  container);
- the ``mtls-lab`` executable is the one installed next to the running Python.

The working directory is the repository, which stands in for the image's WORKDIR (a test checks that
the Dockerfile copies every relative path the commands use).
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
STARTED = re.compile(r"mtls-lab server on https://127\.0\.0\.1:(\d+) ")

# ${VAR}, ${VAR:-default}, ${VAR-default}, $VAR and $$: the forms this file may use.
_INTERPOLATION = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?-)(?P<default>[^}]*))?\}"
    r"|(?P<bare>[A-Za-z_][A-Za-z0-9_]*)|(?P<invalid>))"
)


def load_compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(data, dict)
    return data


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


def entrypoint() -> list[str]:
    """The Dockerfile's ENTRYPOINT, exec form."""
    for line in DOCKERFILE.read_text().splitlines():
        if line.startswith("ENTRYPOINT "):
            value = yaml.safe_load(line.removeprefix("ENTRYPOINT "))  # exec form is a JSON list
            assert isinstance(value, list), "ENTRYPOINT must use the exec form"
            return [str(v) for v in value]
    raise AssertionError("the Dockerfile has no ENTRYPOINT")


def host_executable(name: str) -> list[str]:
    """The host's version of an executable the image runs."""
    installed = Path(sys.executable).with_name(name)
    if installed.exists():
        return [str(installed)]
    assert name == "mtls-lab", f"no host stand-in for {name}"
    return [sys.executable, "-m", "mtls_lab.cli"]


def container_port(service: Mapping[str, Any]) -> int:
    """The port a server service's container listens on, from its published ports."""
    (mapping,) = service["ports"]
    return int(str(mapping).split(":")[-1].split("/")[0])


@dataclass
class HostProject:
    """The compose project, laid out on the host under ``root``."""

    root: Path
    variables: Mapping[str, str] = field(default_factory=dict)
    compose: dict[str, Any] = field(default_factory=load_compose)
    ports: dict[str, int] = field(default_factory=dict)  # server service -> the host port it got

    def volume_dir(self, name: str) -> Path:
        return self.root / "volumes" / name

    def service(self, name: str) -> dict[str, Any]:
        service = self.compose["services"][name]
        assert isinstance(service, dict)
        return service

    def translate(self, text: str, own: str) -> str:
        """A string of service ``own``'s configuration, as it must read on the host."""
        for mount in self.service(own).get("volumes", []):
            volume, target = str(mount).split(":")[:2]
            text = re.sub(rf"(?<![\w/]){re.escape(target)}(?=/|$)", str(self.volume_dir(volume)), text)
        for name, port in self.ports.items():
            inside = container_port(self.service(name))
            text = text.replace(f"://{name}:{inside}", f"://127.0.0.1:{port}")
            if name == own:
                text = text.replace(f"://127.0.0.1:{inside}", f"://127.0.0.1:{port}")
                text = text.replace(f"://localhost:{inside}", f"://127.0.0.1:{port}")
        return text

    def service_environment(self, name: str) -> dict[str, str]:
        """The service's ``environment`` after interpolation, as compose hands it to the container."""
        raw = self.service(name).get("environment", {})
        assert isinstance(raw, dict), f"{name}: environment must be a mapping"
        return {key: interpolate(str(value), self.variables) for key, value in raw.items()}

    def environment(self, name: str) -> dict[str, str]:
        """The process environment: the host's minus lab and compose variables, plus the service's."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("MTLS_LAB_") and k not in variables_used()}
        for key, value in self.service_environment(name).items():
            env[key] = self.translate(value, name)
        if "ports" in self.service(name):  # a server: loopback, any free port (it prints the one it got)
            env["MTLS_LAB_HOST"] = "127.0.0.1"
            env["MTLS_LAB_PORT"] = "0"
        return env

    def argv(self, name: str) -> list[str]:
        command = self.service(name)["command"]
        assert isinstance(command, list), f"{name}: command must be a list (exec form)"
        words = [self.translate(interpolate(str(w), self.variables), name) for w in command]
        program, *rest = entrypoint()
        return [*host_executable(program), *rest, *words]

    def healthcheck(self, name: str) -> list[str]:
        kind, program, *words = self.service(name)["healthcheck"]["test"]
        assert kind == "CMD", f"{name}: the healthcheck must be an exec-form CMD"
        return [*host_executable(program), *(self.translate(interpolate(w, self.variables), name) for w in words)]

    def prepare_volumes(self) -> None:
        """Each named volume as the image leaves its mount point: an empty directory, mode 0700."""
        for name in self.compose.get("volumes", {}):
            self.volume_dir(name).mkdir(parents=True, exist_ok=True)
            self.volume_dir(name).chmod(0o700)

    def run(self, name: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Run a one-shot service to completion."""
        return subprocess.run(
            self.argv(name), env=self.environment(name), cwd=ROOT, capture_output=True, text=True, timeout=timeout
        )

    def start(self, name: str) -> subprocess.Popen[str]:
        """Start a long-running service; ``wait_started`` reads its port."""
        return subprocess.Popen(
            self.argv(name),
            env=self.environment(name),
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def wait_started(self, name: str, process: subprocess.Popen[str], timeout: float = 20) -> str:
        """Read the server's start-up line and record its port; returns the line."""
        assert process.stdout is not None
        deadline = time.monotonic() + timeout
        lines = []
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            lines.append(line)
            if found := STARTED.search(line):
                self.ports[name] = int(found.group(1))
                return line
        process.kill()
        raise AssertionError(f"{name} did not start: {shlex.join(self.argv(name))}\n{''.join(lines)}")
