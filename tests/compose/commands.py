"""The documented compose commands and what each must do (docs/compose.md is checked against them)."""

from __future__ import annotations

from dataclasses import dataclass

from tests.compose.project import DOCS
from tests.support.docs_check import blocks, steps

DEFAULT_SERVICES = {"certs", "server", "caller"}
MATRIX_SERVICES = {"server-tls", "server-mtls", "server-mixed", "caller-matrix"}
SERVERS = {"server", "server-tls", "server-mtls", "server-mixed"}
UID = 10001  # the Dockerfile's user `lab`


@dataclass(frozen=True)
class Flip:
    """One documented `VAR=value docker compose up ...` and what the caller must print."""

    variables: dict[str, str]
    exit_code: int
    verdict: str  # the caller's VERDICT line starts with this

    @property
    def id(self) -> str:
        return " ".join(f"{k}={v}" for k, v in self.variables.items()) or "default"

    @property
    def command(self) -> str:
        return f"{self.id} docker compose up --exit-code-from caller caller".removeprefix("default ")


FLIPS = [
    Flip({}, 1, "VERDICT: HTTP_ERROR HTTP 403 no_client_certificate"),
    Flip({"SERVER_MODE": "mtls"}, 0, "VERDICT: ACCEPTED HTTP 200"),
    Flip({"SERVER_MODE": "mixed"}, 0, "VERDICT: ACCEPTED HTTP 200"),
    Flip(
        {"SERVER_MODE": "mixed", "SERVER_TRUST": "ca/impostor-root.pem"},
        1,
        "VERDICT: HTTP_ERROR HTTP 403 no_client_certificate",
    ),
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
RUN_CALLER = "docker compose run --rm caller"
MATRIX = "docker compose --profile matrix up --exit-code-from caller-matrix caller-matrix"
DOWN = "docker compose --profile matrix down -v"
PLAIN_DOWN = "docker compose down -v"  # without the profile: its containers and the volume stay
FORCE_CERTS = "docker compose run --rm certs certs --out /lab/certs --force"
DOCS_TEXT = DOCS.read_text()


def documented_commands(text: str = DOCS_TEXT) -> list[str]:
    """The command lines of a page's compose blocks (the docs check skips them: the real run runs them)."""
    found = [b for b in blocks(text) if any("docker compose" in line for line in b.lines)]
    assert found, "no block of compose commands"
    for block in found:
        assert block.skip and "tests/test_compose_real.py" in block.skip, f"line {block.line}: say who runs it"
    return [step.command for block in found for step in steps(block)]


def output_marker(flip: Flip) -> str:
    """docs/compose.md marks the caller output it shows with the flip it came from."""
    return f"<!-- compose-output: {flip.id if flip.variables else '(none)'} -->"


def shown_output(flip: Flip) -> list[str]:
    """The caller's output docs/compose.md shows for ``flip``."""
    marker = output_marker(flip) + "\n```\n"
    assert marker in DOCS_TEXT, marker
    return DOCS_TEXT.split(marker, 1)[1].split("\n```", 1)[0].splitlines()


# the flips whose output docs/compose.md shows
SHOWN = [flip for flip in FLIPS if output_marker(flip) in DOCS_TEXT]
