"""Turn report views into one self-contained HTML file, with Jinja2 (autoescape on) and a strict CSP.

The page's Content-Security-Policy allows nothing from anywhere (``default-src 'none'``): no fetch, no
font, no image, no frame. The inline stylesheet and the matrix's filter script are allowed by their
SHA-256 hashes, so a script that slipped into the page (it cannot: every text is escaped) would not run.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import os
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from mtls_lab import __version__
from mtls_lab.errors import LabError
from mtls_lab.report.views import CallView, MatrixView, ProbeView

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("mtls_lab.report", "templates"),
    autoescape=True,  # every template, whatever its name: the texts come from the network
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def _asset(name: str) -> str:
    return (resources.files("mtls_lab.report") / "templates" / name).read_text(encoding="utf-8")


def _hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def csp(style: str, script: str | None) -> str:
    """The page's policy: nothing external; only this page's own style and script, by hash."""
    scripts = _hash(script) if script else "'none'"
    return (
        f"default-src 'none'; style-src {_hash(style)}; script-src {scripts}; img-src 'none'; font-src 'none'; "
        "connect-src 'none'; base-uri 'none'; form-action 'none'"
    )


def _page(template: str, kind: str, title: str, script: str | None = None, **values: Any) -> str:
    style = _asset("report.css")
    return _ENV.get_template(template).render(
        kind=kind,
        title=title,
        css=Markup(style),  # our own file, verbatim: its hash is in the policy
        script=Markup(script) if script else None,
        csp=csp(style, script),
        version=__version__,
        generated=dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        **values,
    )


def render_call(view: CallView) -> str:
    return _page("call.html.j2", "call", view.title, view=view)


def render_probe(view: ProbeView) -> str:
    return _page("probe.html.j2", "probe", view.title, view=view)


def render_matrix(view: MatrixView) -> str:
    return _page("matrix.html.j2", "matrix", view.title, script=_asset("filter.js"), view=view)


def write(path: Path, html: str) -> None:
    """Write the report to a new file; an existing file is never replaced."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError as exc:
        raise LabError(f"--report {path}: the file already exists: choose a new file name (never overwritten)") from exc
    except OSError as exc:
        raise LabError(f"--report {path}: cannot create it ({exc.strerror}): choose a writable path") from exc
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(html)
