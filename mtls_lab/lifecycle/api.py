"""A local stand-in for Adobe's public-certificate API, serving the lab's Adobe-like certificates.

Adobe asks customers not to pin its client certificate but to fetch it from the MTLS Service API and
to automate that (docs/adobe-facts.md). This service lets that automation meet a rotation and the CA
migration on a laptop before it meets production.

What follows Adobe's documentation (Experience Platform, "Public certificate endpoint"; the OpenAPI
file ``mtls-service.yaml`` of the experience-platform-apis repository; the troubleshooting guide's
request-header errors):

- ``GET /data/core/mtls/v1/certificate/public-certificate`` with the optional query parameters
  ``page`` (default 1) and ``limit`` (default 25, at most 100, positive);
- the required headers ``Authorization: Bearer {ACCESS_TOKEN}``, ``x-api-key``, ``x-gw-ims-org-id`` and
  ``Content-Type`` (``application/json``), and the gateway's answers when one is missing or wrong:
  ``403010 Oauth token is missing.`` and ``401013 Oauth token is not valid`` (HTTP 401, the status
  table's "access token missing or invalid"), ``403000 Api Key is required`` and ``403003 Api Key is
  invalid`` (HTTP 403), ``400003 Missing header`` for the organization header, and the problem details
  ``400 BadRequestError "A valid content-type must be specified"`` for the content type;
- the response: ``results[]`` of ``certCommonName``, ``publicCertificate`` (PEM) and ``expiryDate``
  (ISO 8601, UTC, with milliseconds as in Adobe's sample), ``total``, ``count``, and ``_links`` with
  ``next``, ``prev`` and ``page``, each ``{"href": ..., "templated": true}`` as in Adobe's sample;
- certificates "for any of your organization's Adobe applications": AJO's custom actions
  (``ajo-journeys.aep-mtls.adobe.com``), its custom SMS providers (``ajo-sms.aep-mtls.adobe.com``) and
  ``Adobe Experience Platform`` (the common name of Adobe's sample).

Lab choices, where Adobe documents nothing (labelled in docs/lifecycle.md too):

- the links are RFC 6570 templates that fix the page and leave the limit to the client:
  ``...?page=2{&limit}``; ``{}`` when there is no such page; a ``page`` beyond the last one is an empty
  page, ``page=0`` and anything not a positive integer a 400 with a problem-details body;
- Adobe documents the content-type answer for requests with a body; ``mtls-service.yaml`` marks the
  header required on this GET too, so the lab refuses a GET without it the same way (a model);
- the order of the checks (token, API key, organization, content type); any non-empty value passes
  unless ``--token`` or ``--api-key`` name the one value to accept;
- the order of ``results``: Adobe Experience Platform, then AJO's custom-action certificates (oldest
  first), then ajo-sms; ``--app`` limits the listing to some applications;
- ``--chain leaf`` (default) serves the certificate alone, as Adobe's sample shows; ``--chain full``
  appends its intermediate and root to ``publicCertificate`` (a lab extension);
- the response header ``x-mtls-lab-phase`` names the phase, and ``GET``/``PUT /_lab/phase`` read and
  switch it while the service runs.

The phases move AJO's custom-action certificate (see ``phases``): ``current``, ``overlap``, ``rotated``,
``transition`` (both hierarchies listed) and ``migration`` (the new hierarchy only). The other
applications' certificates stay on today's hierarchy in every phase: connections move at different times.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn
from cryptography import x509
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mtls_lab.certs.inspect import common_name, load_pem_chain, pem_of
from mtls_lab.certs.layout import CA, DEFAULT_CERTS_DIR, LISTED_ONLY, AdobeApp, Identity, LabPaths
from mtls_lab.certs.pki import require
from mtls_lab.lifecycle.phases import (
    API_PATH,
    DEFAULT_LIMIT,
    DEFAULT_PORT,
    FIRST_PAGE,
    MAX_LIMIT,
    PHASE_HEADER,
    PHASE_PATH,
    ChainMode,
    Phase,
)
from mtls_lab.server._uvicorn_stop import PromptServer
from mtls_lab.server.background import BackgroundServer
from mtls_lab.server.run import bind, configure_logging

logger = logging.getLogger("mtls_lab.adobe_api")


@dataclass(frozen=True)
class AdobeApiConfig:
    """Everything ``mtls-lab adobe-api`` can be told."""

    phase: Phase = Phase.CURRENT
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    certs: Path = DEFAULT_CERTS_DIR
    chain: ChainMode = ChainMode.LEAF
    token: str | None = None  # None: any non-empty bearer token
    api_key: str | None = None  # None: any non-empty API key
    applications: tuple[AdobeApp, ...] = tuple(AdobeApp)  # whose certificates are listed
    quiet: bool = False


@dataclass(frozen=True)
class GatewayError:
    """One of the Adobe gateway's documented answers to a missing or invalid header."""

    status: int
    error_code: str
    message: str
    header: str

    def response(self) -> JSONResponse:
        return JSONResponse({"error_code": self.error_code, "message": self.message}, status_code=self.status)


TOKEN_MISSING = GatewayError(401, "403010", "Oauth token is missing.", "Authorization")
TOKEN_INVALID = GatewayError(401, "401013", "Oauth token is not valid", "Authorization")
API_KEY_MISSING = GatewayError(403, "403000", "Api Key is required", "x-api-key")
API_KEY_INVALID = GatewayError(403, "403003", "Api Key is invalid", "x-api-key")
ORG_MISSING = GatewayError(400, "400003", "Missing header", "x-gw-ims-org-id")
# The troubleshooting guide's answer to a missing or wrong Content-Type, as documented (its odd type included).
CONTENT_TYPE_DETAIL = "A valid content-type must be specified"


def check_headers(request: Request, config: AdobeApiConfig) -> GatewayError | None:
    """The gateway's answer to the request's credentials, or None when they pass."""
    authorization = request.headers.get("authorization", "").strip()
    if not authorization:
        return TOKEN_MISSING
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip() or config.token not in (None, token.strip()):
        return TOKEN_INVALID
    api_key = request.headers.get("x-api-key", "").strip()
    if not api_key:
        return API_KEY_MISSING
    if config.api_key not in (None, api_key):
        return API_KEY_INVALID
    if not request.headers.get("x-gw-ims-org-id", "").strip():
        return ORG_MISSING
    return None


def content_type_ok(request: Request) -> bool:
    """``Content-Type: application/json`` (parameters such as charset allowed), as mtls-service.yaml requires."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    return media_type == "application/json"


Source = Identity | AdobeApp  # an AJO custom-action identity, or another application's certificate


@dataclass(frozen=True)
class Listing:
    """One ``results[]`` entry, built once from the lab PKI."""

    source: Source
    common_name: str
    pem: str
    expiry: dt.datetime

    def to_json(self) -> dict[str, str]:
        return {
            "certCommonName": self.common_name,
            "publicCertificate": self.pem,
            "expiryDate": self.expiry.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        }


def listings(paths: LabPaths, chain: ChainMode) -> dict[Source, Listing]:
    """The entry of every certificate the API can list."""
    chains: dict[Source, tuple[Path, tuple[CA, ...]]] = {
        Identity.ADOBE: (paths.client_leaf(Identity.ADOBE), (CA.ADOBE_INTERMEDIATE, CA.ADOBE_ROOT)),
        Identity.ADOBE_ROTATED: (paths.client_leaf(Identity.ADOBE_ROTATED), (CA.ADOBE_INTERMEDIATE, CA.ADOBE_ROOT)),
        Identity.ADOBE_NEXT: (paths.client_leaf(Identity.ADOBE_NEXT), (CA.NEXT_INTERMEDIATE, CA.NEXT_ROOT)),
        **{app: (paths.app_leaf(app), (CA.ADOBE_INTERMEDIATE, CA.ADOBE_ROOT)) for app in LISTED_ONLY},
    }
    entries = {}
    for source, (leaf_file, issuers) in chains.items():
        certs: list[x509.Certificate] = load_pem_chain(leaf_file)
        if chain is ChainMode.FULL:
            certs += [load_pem_chain(paths.ca(ca))[0] for ca in issuers]
        leaf = certs[0]
        name = common_name(leaf.subject) or ""
        entries[source] = Listing(source, name, "".join(pem_of(c) for c in certs), leaf.not_valid_after_utc)
    return entries


def served(phase: Phase, applications: tuple[AdobeApp, ...]) -> list[Source]:
    """What the API lists in ``phase``, in the lab's order (Experience Platform, AJO's certificates, ajo-sms)."""
    order: list[Source] = [AdobeApp.PLATFORM, *phase.identities, AdobeApp.SMS]
    return [s for s in order if (s if isinstance(s, AdobeApp) else AdobeApp.JOURNEYS) in applications]


@dataclass
class PhaseSwitch:
    """The phase being served; a lock because the CLI's and the tests' switches come from other threads."""

    phase: Phase
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self) -> Phase:
        with self._lock:
            return self.phase

    def set(self, phase: Phase) -> None:
        with self._lock:
            self.phase = phase


def create_api_app(config: AdobeApiConfig, switch: PhaseSwitch | None = None) -> Starlette:
    """The Starlette app: the public-certificate endpoint and the lab's phase switch."""
    entries = listings(require(config.certs), config.chain)
    switch = switch or PhaseSwitch(config.phase)

    async def certificates(request: Request) -> Response:
        phase = switch.get()
        refused = check_headers(request, config)
        if refused is not None:
            logger.info("GET %s -> %d %s %s", request.url.path, refused.status, refused.error_code, refused.message)
            return _with_phase(refused.response(), phase)
        if not content_type_ok(request):
            return _with_phase(_bad_request(CONTENT_TYPE_DETAIL, "/placeholder/type/uri"), phase)
        paging = _paging(request)
        if isinstance(paging, Response):
            return _with_phase(paging, phase)
        listed = [entries[s] for s in served(phase, config.applications)]
        body = page_body(listed, *paging, base=str(request.url.replace(query="")))
        logger.info("GET %s page=%d limit=%d -> 200, %d of %d", API_PATH, *paging, body["count"], body["total"])
        return _with_phase(JSONResponse(body), phase)

    async def phase_route(request: Request) -> Response:
        if request.method == "PUT":
            refused = await _switch(request, switch)
            if refused is not None:
                return refused
            logger.info("phase switched to %s", switch.get().value)
        phase = switch.get()
        return _with_phase(JSONResponse(_phase_json(phase, entries, config.applications)), phase)

    return Starlette(
        routes=[
            Route(API_PATH, certificates, methods=["GET"]),
            Route(PHASE_PATH, phase_route, methods=["GET", "PUT"]),
        ]
    )


def page_body(listed: list[Listing], page: int, limit: int, base: str) -> dict[str, Any]:
    """One page of results in Adobe's documented shape; pages count from 1.

    A choice: Adobe's OpenAPI file gives ``page`` a default of 1, its example asks ``page=0``.
    """
    start = (page - FIRST_PAGE) * limit
    chosen = listed[start : start + limit]
    last = max(FIRST_PAGE, FIRST_PAGE + (len(listed) - 1) // limit)

    def link(number: int) -> dict[str, Any]:
        return {"href": f"{base}?page={number}{{&limit}}", "templated": True}

    return {
        "results": [entry.to_json() for entry in chosen],
        "total": len(listed),
        "count": len(chosen),
        "_links": {
            "next": link(page + 1) if page < last else {},
            "prev": link(min(page - 1, last)) if page > FIRST_PAGE else {},
            "page": link(page),
        },
    }


def _paging(request: Request) -> tuple[int, int] | Response:
    page = _integer(request, "page", FIRST_PAGE, FIRST_PAGE, None)
    if isinstance(page, Response):
        return page
    limit = _integer(request, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    if isinstance(limit, Response):
        return limit
    return page, limit


def _integer(request: Request, name: str, default: int, low: int, high: int | None) -> int | Response:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if raw.strip().isdigit() and low <= int(raw) and (high is None or int(raw) <= high):
        return int(raw)
    allowed = f"an integer from {low} to {high}" if high is not None else f"an integer from {low}"
    return _bad_request(f"{name} must be {allowed}: got {raw!r}")


def _bad_request(detail: str, kind: str = "about:blank") -> JSONResponse:
    body = {"type": kind, "status": 400, "title": "BadRequestError", "detail": detail}
    logger.info("GET %s -> 400 %s", API_PATH, detail)
    return JSONResponse(body, status_code=400)


async def _switch(request: Request, switch: PhaseSwitch) -> Response | None:
    try:
        data = json.loads(await request.body())
        switch.set(Phase(data["phase"]))
    except (ValueError, KeyError, TypeError):
        names = ", ".join(p.value for p in Phase)
        return _bad_request(f'send {{"phase": NAME}} with NAME one of {names}')
    return None


def _phase_json(phase: Phase, entries: dict[Source, Listing], applications: tuple[AdobeApp, ...]) -> dict[str, Any]:
    return {
        "phase": phase.value,
        "summary": phase.summary,
        "serves": [
            {
                "identity" if isinstance(s, Identity) else "application": s.value,
                "certCommonName": entries[s].common_name,
                "expiryDate": entries[s].to_json()["expiryDate"],
            }
            for s in served(phase, applications)
        ],
    }


def _with_phase(response: Response, phase: Phase) -> Response:
    response.headers[PHASE_HEADER] = phase.value
    return response


# --- running it -----------------------------------------------------------------------------------


def make_api_server(config: AdobeApiConfig, switch: PhaseSwitch) -> PromptServer:
    """A uvicorn server for the API over HTTPS with the lab server's certificate (no client certificates)."""
    paths = require(config.certs)
    settings = uvicorn.Config(
        create_api_app(config, switch),
        ssl_certfile=str(paths.server_cert),
        ssl_keyfile=str(paths.server_key),
        lifespan="off",
        access_log=False,
        log_config=None,
        server_header=False,
    )
    return PromptServer(settings)


def describe(config: AdobeApiConfig) -> str:
    """One line: what the service lists and what it checks."""
    listed = ", ".join(s.value for s in served(config.phase, config.applications))
    token = "the --token value" if config.token else "any bearer token"
    key = "the --api-key value" if config.api_key else "any API key"
    return (
        f"phase {config.phase.value} ({config.phase.summary}): lists {listed}; publicCertificate: "
        f"{config.chain.summary}; accepts {token}, {key}, any x-gw-ims-org-id, and Content-Type: application/json; "
        f"switch phases with PUT {PHASE_PATH}"
    )


def serve_api(config: AdobeApiConfig) -> None:
    """Serve until interrupted (the ``mtls-lab adobe-api`` command)."""
    server = make_api_server(config, PhaseSwitch(config.phase))
    sock = bind(config.host, config.port)
    configure_logging(config.quiet)
    host = f"[{config.host}]" if ":" in config.host else config.host
    print(f"mtls-lab adobe-api on https://{host}:{sock.getsockname()[1]}{API_PATH} | {describe(config)}", flush=True)
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()


class RunningAdobeApi(BackgroundServer):
    """The API in a background thread, on a free loopback port unless told otherwise."""

    def __init__(self, config: AdobeApiConfig, port: int = 0) -> None:
        self.switch = PhaseSwitch(config.phase)
        super().__init__(make_api_server(config, self.switch), bind(config.host, port), "Adobe API")

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def endpoint(self) -> str:
        return self.url + API_PATH

    def set_phase(self, phase: Phase) -> None:
        self.switch.set(phase)
