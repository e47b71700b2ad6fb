"""AJO's configuration rules that both the action and its authentication block follow.

From Journey Optimizer's "Configure a custom action" page (docs/adobe-facts.md):
- URLs: "We do not allow the use of Adobe addresses that are not public and the use of IP addresses";
  "Only the default ports are allowed when defining a custom action: 80 for http and 443 for https";
  HTTPS is strongly recommended.
- Payload: "Field names in the payload cannot contain a dot `.` character, nor start with a `$` character."
- Runtime: the journey's timeout is 1 to 30 seconds, with up to 3 retries inside it (``AJOLimits`` in
  ``mtls_lab/vocabulary.py``; ``TIMEOUT_RULE`` and ``RETRIES_RULE`` say them, ``timeout_allowed`` checks one).

A local lab must call ``localhost`` on other ports, so what AJO would refuse there is a warning; an IP
address that is not loopback is refused, as AJO refuses it.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import SplitResult, urlsplit

from mtls_lab.errors import LabError
from mtls_lab.vocabulary import AJOLimits

DEFAULT_PORTS = {"http": 80, "https": 443}
TIMEOUT_RULE = f"AJO's timeout is {AJOLimits.TIMEOUT_MIN:g} to {AJOLimits.TIMEOUT_MAX:g} seconds"
RETRIES_RULE = f"AJO retries at most {AJOLimits.MAX_RETRIES} times"


def timeout_allowed(seconds: float) -> bool:
    return AJOLimits.TIMEOUT_MIN <= seconds <= AJOLimits.TIMEOUT_MAX


class ActionError(LabError):
    """The action or context is invalid; the message names the field."""


def check_url(url: str, source: str, label: str = "url", action: bool = True) -> list[str]:
    """Errors for URLs nothing (or AJO) would call; warnings, starting with ``label``, for what AJO would refuse
    but the lab allows. ``action=False`` (the token endpoint): Adobe states these rules for the action's URL
    only, so every finding is a warning, marked as a model."""
    parts = _split(url, source)
    found = []
    if parts.scheme == "http":
        found.append("AJO would refuse plain http here: custom actions to mTLS endpoints need https")
    host = parts.hostname or ""
    address = _ip(host)
    if address is not None and not address.is_loopback and action:
        raise ActionError(
            f"{source}: url {url!r}: AJO refuses IP addresses: give the endpoint's host name (the lab allows only "
            "loopback addresses, with a warning)"
        )
    if address is not None:
        found.append(f"AJO would refuse the IP address {host}: it requires a host name")
    default = DEFAULT_PORTS[parts.scheme]
    if parts.port not in (None, default):
        found.append(
            f"AJO would refuse port {parts.port} with {parts.scheme}: only the default ports are allowed "
            "(80 for http, 443 for https)"
        )
    model = "" if action else " (model: Adobe states this for the action's URL)"
    return [f"{label}: {text}{model}" for text in found]


def check_field_name(name: str, where: str) -> None:
    """A payload field name as AJO allows it: no ``.``, not starting with ``$``."""
    if not name or "." in name:
        raise ActionError(
            f"{where}: field name {name!r}: AJO allows no '.' in payload field names (and no empty name): "
            "rename the field"
        )
    if name.startswith("$"):
        raise ActionError(f"{where}: field name {name!r}: AJO refuses payload field names that start with '$'")


def _split(url: str, source: str) -> SplitResult:
    if not url or any(c.isspace() or not c.isprintable() for c in url):
        raise ActionError(f"{source}: url {url!r}: spaces and control characters are not allowed: encode them")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  # raises ValueError for a port that is not a number from 0 to 65535
    except ValueError as exc:  # e.g. an unclosed IPv6 bracket
        raise ActionError(
            f"{source}: url {url!r}: not a valid URL, or the port is not a number from 1 to 65535 ({exc}): give "
            "one like https://host/path"
        ) from exc
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        raise ActionError(f"{source}: url {url!r}: give an absolute URL like https://host/path")
    return parts


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None
