"""A client for Adobe's public-certificate API (or the lab's ``mtls-lab adobe-api``): every page, checked.

``fetch_all`` sends the headers ``mtls-service.yaml`` marks required (``Authorization``,
``x-api-key``, ``x-gw-ims-org-id``, ``Content-Type: application/json``) and follows ``_links.next``
from page to page, never to another origin (the request carries the access token). Adobe's sample
marks its links ``"templated": true``: such a link is an RFC 6570 template, expanded with the next
page's number (pages count from 1: a choice, after the OpenAPI file's `page` default, whose example
asks `page=0`) and the page size in use; a variable
without a value is left out, as RFC 6570 says. Each answer is checked against Adobe's documented
format. Failures become one-line ``CertApiError``s with a named exit code:

- the API unreachable or too slow: ``CONNECTION``;
- its HTTPS certificate not trusted: ``SERVER_UNTRUSTED`` (the API is a server like any other);
- an HTTP error, such as the gateway's 401/403/400 for a missing header: ``HTTP_ERROR``, naming the
  header and the option that sets it;
- an answer that is not Adobe's format (not JSON, no ``results``, a ``publicCertificate`` that is
  not PEM): ``BAD_RESPONSE``.
"""

from __future__ import annotations

import datetime as dt
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx
from cryptography import x509
from uritemplate import URITemplate

from mtls_lab.errors import ExitCode, LabError, cause_of
from mtls_lab.lifecycle.phases import API_PATH, FIRST_PAGE
from mtls_lab.vocabulary import ADOBE_API_PORT

MAX_PAGES = 1000
SYSTEM = "system"

# The gateway's documented error codes (Experience Platform troubleshooting guide), by the header to fix.
_HEADER_OF_CODE = {
    "403010": ("Authorization: Bearer", "--token"),
    "401013": ("Authorization: Bearer", "--token"),
    "401014": ("Authorization: Bearer", "--token"),
    "403000": ("x-api-key", "--api-key"),
    "403003": ("x-api-key", "--api-key"),
    "400003": ("x-gw-ims-org-id", "--org-id"),
    "403025": ("x-gw-ims-org-id", "--org-id"),
}


class CertApiError(LabError):
    """The API could not be read; the message says why on one line, ``exit_code`` names the kind."""

    def __init__(self, message: str, exit_code: ExitCode) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass(frozen=True)
class Credentials:
    """The three headers Adobe's API requires. None: the header is not sent."""

    token: str | None = None
    api_key: str | None = None
    org_id: str | None = None

    def headers(self) -> dict[str, str]:
        # Content-Type on a GET: mtls-service.yaml marks it required, and Adobe's sample request sends it.
        headers = {"Accept": "application/json", "Content-Type": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        if self.api_key:
            headers["x-api-key"] = self.api_key
        if self.org_id:
            headers["x-gw-ims-org-id"] = self.org_id
        return headers


@dataclass(frozen=True)
class Listed:
    """One ``results[]`` entry: the certificates of ``publicCertificate`` (the first is Adobe's) and its claims."""

    common_name: str
    certificates: tuple[x509.Certificate, ...]
    expiry: dt.datetime


@dataclass(frozen=True)
class Fetched:
    """Every entry of every page, and what the API said about them."""

    url: str
    entries: tuple[Listed, ...]
    pages: int
    total: int | None
    phase: str | None  # the lab API's x-mtls-lab-phase header; None for Adobe's API


def endpoint_url(api: str) -> str:
    """The endpoint's URL: ``api`` as given if it has a path, else the documented path on that host."""
    parts = urlsplit(api)
    if parts.scheme != "https" or not parts.netloc:
        # https only: the request carries the access token, and Adobe's API is HTTPS.
        raise LabError(
            f"--api {api}: not an https URL: give e.g. https://platform.adobe.io or https://127.0.0.1:{ADOBE_API_PORT}"
        )
    return api if parts.path not in ("", "/") else api.rstrip("/") + API_PATH


def api_context(server_ca: Path | str) -> ssl.SSLContext:
    """The one place trust-sync's SSLContext is made: the system trust store or one CA file."""
    if server_ca == SYSTEM:
        return ssl.create_default_context()
    try:
        return ssl.create_default_context(cafile=str(server_ca))
    except (OSError, ssl.SSLError) as exc:
        raise LabError(f"--server-ca {server_ca}: cannot load it as PEM CA certificates: give a PEM file") from exc


def fetch_all(
    api: str, credentials: Credentials, context: ssl.SSLContext, limit: int | None = None, timeout: float = 10.0
) -> Fetched:
    """Read every page of the public-certificate API."""
    url = endpoint_url(api)
    entries: list[Listed] = []
    seen: set[str] = set()
    total: int | None = None
    phase: str | None = None
    # The first page's URL carries --limit; later pages' URLs are the API's own next links, used as given.
    next_url: str | None = str(httpx.URL(url).copy_merge_params({"limit": limit})) if limit else url
    with httpx.Client(verify=context, timeout=timeout, headers=credentials.headers()) as client:
        while next_url is not None:
            if next_url in seen or len(seen) >= MAX_PAGES:
                raise CertApiError(
                    f"{url}: the pages' next links loop: report it to the API's owner", ExitCode.BAD_RESPONSE
                )
            seen.add(next_url)
            response = _get(client, next_url)
            body = _json(response)
            entries += [_entry(raw, len(entries) + i) for i, raw in enumerate(_results(body, response))]
            total = body.get("total") if isinstance(body.get("total"), int) else None
            phase = response.headers.get("x-mtls-lab-phase")
            next_url = _next(body, str(response.url), limit)
    return Fetched(url, tuple(entries), len(seen), total, phase)


def _get(client: httpx.Client, url: str) -> httpx.Response:
    try:
        response = client.get(url)
    except httpx.TimeoutException as exc:
        raise CertApiError(
            f"{url}: no answer in time ({type(exc).__name__}): is the API up?", ExitCode.CONNECTION
        ) from exc
    except httpx.HTTPError as exc:
        raise _transport_error(url, exc) from exc
    if response.status_code != 200:
        raise _http_error(response)
    return response


def _transport_error(url: str, exc: httpx.HTTPError) -> CertApiError:
    verify = cause_of(exc, ssl.SSLCertVerificationError)
    if verify is not None:
        return CertApiError(
            f"{url}: the API's certificate is not trusted ({verify.verify_message}): pass --server-ca PEM "
            "(the lab's adobe-api: certs/ca/server-root.pem; Adobe's API: --server-ca system)",
            ExitCode.SERVER_UNTRUSTED,
        )
    return CertApiError(
        f"{url}: cannot reach the API ({_first_line(exc)}): check --api, or start `mtls-lab adobe-api`",
        ExitCode.CONNECTION,
    )


def _http_error(response: httpx.Response) -> CertApiError:
    """One line naming the header to fix, from the gateway's documented error codes."""
    try:
        body = response.json()
    except ValueError:
        body = None
    code = str(body.get("error_code", "")) if isinstance(body, dict) else ""
    said = f"{code} {body.get('message', '')}".strip() if isinstance(body, dict) and code else ""
    if isinstance(body, dict) and not said and isinstance(body.get("detail"), str):  # problem details
        said = f"{body.get('title', 'error')}: {body['detail']}"
    said = said or _first_line(response.text) or response.reason_phrase
    what = f"{response.url}: HTTP {response.status_code} ({said})"
    if "content-type" in said.lower():
        return CertApiError(
            f"{what}: the API wants the header Content-Type: application/json: send it (mtls-service.yaml marks it "
            "required)",
            ExitCode.HTTP_ERROR,
        )
    if code in _HEADER_OF_CODE:
        header, option = _HEADER_OF_CODE[code]
        verb = "missing" if code in ("403010", "403000", "400003") else "refused"
        env = "MTLS_LAB_" + option.removeprefix("--").replace("-", "_").upper()
        return CertApiError(f"{what}: the {header} header is {verb}: pass {option} or set {env}", ExitCode.HTTP_ERROR)
    return CertApiError(f"{what}: check --api and the credentials", ExitCode.HTTP_ERROR)


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError as exc:
        kind = response.headers.get("content-type", "no content type")
        raise CertApiError(
            f"{response.url}: the answer is not JSON ({kind}): is --api the right URL?", ExitCode.BAD_RESPONSE
        ) from exc
    if not isinstance(body, dict):
        raise CertApiError(
            f"{response.url}: the answer is not a JSON object: is --api the right URL?", ExitCode.BAD_RESPONSE
        )
    return body


def _results(body: dict[str, Any], response: httpx.Response) -> list[Any]:
    results = body.get("results")
    if not isinstance(results, list):
        raise CertApiError(
            f"{response.url}: the answer has no results[] list: is --api the right URL?", ExitCode.BAD_RESPONSE
        )
    return results


def _entry(raw: Any, index: int) -> Listed:
    where = f"results[{index}]"
    if not isinstance(raw, dict):
        raise CertApiError(f"{where} is not an object: the API's answer is not Adobe's format", ExitCode.BAD_RESPONSE)
    for name in ("certCommonName", "publicCertificate", "expiryDate"):
        if not isinstance(raw.get(name), str):
            raise CertApiError(
                f"{where} has no {name} string: the API's answer is not Adobe's format", ExitCode.BAD_RESPONSE
            )
    try:
        certificates = x509.load_pem_x509_certificates(raw["publicCertificate"].encode())
    except ValueError as exc:
        raise CertApiError(
            f"{where}.publicCertificate is not PEM ({exc}): the API's answer is not Adobe's format",
            ExitCode.BAD_RESPONSE,
        ) from exc
    try:
        expiry = dt.datetime.fromisoformat(raw["expiryDate"])
    except ValueError as exc:
        raise CertApiError(
            f"{where}.expiryDate {raw['expiryDate']!r} is not ISO 8601: the API's answer is not Adobe's format",
            ExitCode.BAD_RESPONSE,
        ) from exc
    if expiry.tzinfo is None:
        expiry = expiry.replace(tzinfo=dt.UTC)
    return Listed(raw["certCommonName"], tuple(certificates), expiry)


def _next(body: dict[str, Any], current: str, limit: int | None) -> str | None:
    """The next page's URL, or None; refuses another origin, which would receive the token."""
    links = body.get("_links")
    link = links.get("next") if isinstance(links, dict) else None
    if not isinstance(link, dict) or not isinstance(link.get("href"), str) or not link["href"]:
        return None
    href = str(link["href"])
    target = urljoin(current, expand(href, current, limit) if link.get("templated") is True else href)
    here, there = urlsplit(current), urlsplit(target)
    if (here.scheme, here.netloc) != (there.scheme, there.netloc):
        raise CertApiError(
            f"{current}: the next page is on another origin ({there.netloc}): refusing to send the token there",
            ExitCode.BAD_RESPONSE,
        )
    return target


def expand(template: str, current: str, limit: int | None) -> str:
    """A templated next link made concrete: ``page`` is the page after the current one, ``limit`` the size in use."""
    query = {k: v[0] for k, v in parse_qs(urlsplit(current).query).items()}
    page = int(query["page"]) if query.get("page", "").isdigit() else FIRST_PAGE
    size = limit or (int(query["limit"]) if query.get("limit", "").isdigit() else None)
    values = {"page": page + 1, "limit": size}
    return URITemplate(template).expand({k: v for k, v in values.items() if v is not None})


def _first_line(text: object) -> str:
    lines = str(text).strip().splitlines()
    return lines[0][:160] if lines else ""
