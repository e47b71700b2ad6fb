"""A custom action's definition, shaped like AJO's configuration, and the request it produces.

The JSON file (see ``examples/``):

```
{"name": "profile_to_crm", "url": "https://crm.example.com/api", "method": "POST",
 "dynamicPath": {"type": "variable", "from": "profile.id"},
 "headers": [{"name": "X-Source", "type": "constant", "value": "ajo"}],
 "query": [{"name": "lang", "type": "variable", "from": "profile.language", "required": false}],
 "authentication": {"type": "none"},
 "payload": [{"path": "email", "type": "variable", "from": "profile.email", "dataType": "string",
              "required": true, "allowNull": false}],
 "timeout": 30}
```

A context file (``{"profile": {...}, "event": {...}, "journey": {...}}``) supplies the variables:
``from`` is a dotted path into it. Errors name the field and what is allowed; what AJO itself would
refuse but the lab must allow locally (IP hosts, other ports, plain http) becomes a warning.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from mtls_lab.errors import LabError

NAME = re.compile(r"^[A-Za-z0-9_]{1,30}$")
METHODS = ("POST", "PUT", "GET")
AUTH_TYPES = ("none", "basic", "apiKey", "customAuthorization")
DATA_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "decimal": (int, float),
    "boolean": (bool,),
    "dateTime": (str,),
    "listString": (list,),
    "listInteger": (list,),
    "object": (dict,),
}
MISSING = object()


class ActionError(LabError):
    """The action or context is invalid; the message names the field."""


@dataclass(frozen=True)
class Value:
    """A constant, or a variable taken from the context, as AJO maps header, query and payload fields."""

    where: str  # the field's name in error messages, e.g. "headers[0] X-Source"
    constant: Any = None
    source: str | None = None  # dotted path into the context when the value is a variable
    required: bool = True
    allow_null: bool = False
    data_type: str | None = None

    def resolve(self, context: dict[str, Any]) -> Any:
        """The value for one call, MISSING when an optional variable is absent."""
        if self.source is None:
            return self.constant
        value = _lookup(context, self.source)
        if value is MISSING or (value is None and not self.allow_null):
            if self.required:
                state = "missing from" if value is MISSING else "null in"
                raise ActionError(
                    f"{self.where}: the required variable {self.source!r} is {state} the context: add it to the "
                    f"context file{', or allow NULL for this field' if value is None else ''}"
                )
            return MISSING
        if value is not None and self.data_type and not _has_type(value, self.data_type):
            raise ActionError(
                f"{self.where}: {self.source!r} is {type(value).__name__} {value!r}, but the field is "
                f"{self.data_type}: fix the context or the field's dataType"
            )
        return value


@dataclass(frozen=True)
class Auth:
    kind: str = "none"
    username: str = ""
    password: str = ""
    key_name: str = ""
    key_value: str = ""
    location: str = "header"  # apiKey: header|query; customAuthorization: bearer|header|query
    endpoint: str = ""
    token_method: str = "POST"
    token_headers: dict[str, str] = field(default_factory=dict)
    token_body: dict[str, Any] = field(default_factory=dict)
    token_path: str = "access_token"
    cache_seconds: float = 3600.0


@dataclass(frozen=True)
class CustomAction:
    name: str
    url: str
    method: str = "POST"
    description: str = ""
    dynamic_path: Value | None = None
    headers: tuple[tuple[str, Value], ...] = ()
    query: tuple[tuple[str, Value], ...] = ()
    auth: Auth = field(default_factory=Auth)
    payload: tuple[tuple[str, Value], ...] = ()
    timeout: float = 30.0
    warnings: tuple[str, ...] = ()

    def with_url(self, url: str) -> CustomAction:
        """The same action aimed at another endpoint (``--url``), with the warnings re-checked."""
        return dataclasses.replace(self, url=url, warnings=tuple(check_url(url, "--url")))


@dataclass(frozen=True)
class Request:
    """One concrete HTTP request, built from an action and a context."""

    method: str
    url: str
    headers: dict[str, str]
    params: dict[str, str]
    json_body: dict[str, Any] | None


def load(path: Path) -> CustomAction:
    """Read and validate an action file; ActionError with line and column for malformed JSON."""
    return parse(read_json(path, "action"), source=str(path))


def load_context(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    data = read_json(path, "context")
    if not isinstance(data, dict):
        raise ActionError(f'{path}: the context must be a JSON object like {{"profile": {{...}}}}')
    return data


def read_json(path: Path, what: str) -> Any:
    try:
        text = path.read_text()
    except OSError as exc:
        raise ActionError(f"{path}: cannot read the {what} file ({exc.strerror}): check the path") from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ActionError(f"{path}:{exc.lineno}:{exc.colno}: invalid JSON ({exc.msg}): fix the {what} file") from exc


def parse(data: Any, source: str = "action") -> CustomAction:
    if not isinstance(data, dict):
        raise ActionError(f"{source}: an action is a JSON object with name, url and method")
    name = _string(data, "name", source)
    if not NAME.match(name):
        raise ActionError(
            f"{source}: name {name!r}: use letters, digits and underscore only, at most 30 characters "
            f"(it has {len(name)})"
        )
    method = str(data.get("method", "POST")).upper()
    if method not in METHODS:
        raise ActionError(f"{source}: method {method}: AJO custom actions use POST, PUT or GET")
    url = _string(data, "url", source)
    warnings = check_url(url, source)
    payload_spec = data.get("payload", [])
    if payload_spec and method == "GET":
        raise ActionError(f"{source}: payload: AJO sends a request payload with POST or PUT only, not GET")
    timeout = data.get("timeout", 30)
    if not isinstance(timeout, int | float) or isinstance(timeout, bool) or not 1 <= timeout <= 30:
        raise ActionError(f"{source}: timeout {timeout!r}: AJO's timeout is 1 to 30 seconds (default 30)")
    return CustomAction(
        name=name,
        url=url,
        method=method,
        description=str(data.get("description", "")),
        dynamic_path=_value(data["dynamicPath"], "dynamicPath") if "dynamicPath" in data else None,
        headers=_named_values(data.get("headers", []), "headers", source),
        query=_named_values(data.get("query", []), "query", source),
        auth=_auth(data.get("authentication", {"type": "none"}), source),
        payload=_payload(payload_spec, source),
        timeout=float(timeout),
        warnings=tuple(warnings),
    )


def check_url(url: str, source: str) -> list[str]:
    """Errors for URLs nothing can call; warnings for what AJO would refuse but the lab allows."""
    if not url or any(c.isspace() or not c.isprintable() for c in url):
        raise ActionError(f"{source}: url {url!r}: spaces and control characters are not allowed: encode them")
    try:
        parts = urlsplit(url)
    except ValueError as exc:  # e.g. an unclosed IPv6 bracket
        raise ActionError(f"{source}: url {url!r}: not a valid URL ({exc}): give one like https://host/path") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ActionError(f"{source}: url {url!r}: give an absolute URL like https://host/path")
    try:
        port = parts.port
    except ValueError as exc:
        raise ActionError(f"{source}: url {url!r}: the port is not a number from 1 to 65535") from exc
    warnings = []
    if parts.scheme == "http":
        warnings.append("AJO would refuse plain http here: custom actions to mTLS endpoints need https")
    try:
        ipaddress.ip_address(parts.hostname)
        warnings.append(f"AJO would refuse the IP address {parts.hostname}: it requires a host name")
    except ValueError:
        pass
    if port not in (None, 80, 443):
        warnings.append(f"AJO would refuse port {port}: custom actions may use ports 80 and 443 only")
    return warnings


def build_request(action: CustomAction, context: dict[str, Any], path: str | None = None) -> Request:
    """The HTTP request one journey step sends (authentication is added by the caller)."""
    url = action.url
    segment = path if path is not None else _resolved(action.dynamic_path, context)
    if segment not in (None, MISSING, ""):
        url = url.rstrip("/") + "/" + "/".join(quote(str(s), safe="") for s in str(segment).strip("/").split("/"))
    headers = {"Content-Type": "application/json", "Accept-Charset": "utf-8"}
    headers.update({n: str(v) for n, v in _resolve_all(action.headers, context)})
    params = {n: _text(v) for n, v in _resolve_all(action.query, context)}
    body: dict[str, Any] | None = None
    if action.method in ("POST", "PUT"):
        body = {}
        for dotted, value in _resolve_all(action.payload, context):
            _set_path(body, dotted, value)
    return Request(action.method, url, headers, params, body)


# --- helpers ------------------------------------------------------------------------------------


def _string(data: dict[str, Any], key: str, source: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise ActionError(f"{source}: {key}: required, a non-empty string")
    return value


def _value(spec: Any, where: str) -> Value:
    if not isinstance(spec, dict):
        raise ActionError(f"{where}: give an object with type constant (and value) or variable (and from)")
    kind = spec.get("type", "constant")
    data_type = spec.get("dataType")
    if data_type is not None and data_type not in DATA_TYPES:
        raise ActionError(f"{where}: dataType {data_type!r}: use one of {', '.join(DATA_TYPES)}")
    if kind == "constant":
        if "value" not in spec:
            raise ActionError(f"{where}: a constant needs a value")
        return Value(where, constant=spec["value"], data_type=data_type)
    if kind == "variable":
        source = spec.get("from")
        if not isinstance(source, str) or not source:
            raise ActionError(f"{where}: a variable needs from, a dotted path into the context like profile.email")
        return Value(
            where,
            source=source,
            required=bool(spec.get("required", True)),
            allow_null=bool(spec.get("allowNull", False)),
            data_type=data_type,
        )
    raise ActionError(f"{where}: type {kind!r}: use constant or variable")


def _named_values(specs: Any, key: str, source: str) -> tuple[tuple[str, Value], ...]:
    if not isinstance(specs, list):
        raise ActionError(f"{source}: {key}: give a list of {{name, type, value|from}} objects")
    result = []
    for index, spec in enumerate(specs):
        name = spec.get("name") if isinstance(spec, dict) else None
        if not isinstance(name, str) or not name:
            raise ActionError(f"{source}: {key}[{index}]: each entry needs a name")
        if key == "headers" and name.lower() == "content-type" and "json" not in str(spec.get("value", "")):
            raise ActionError(f"{source}: {key}[{index}] Content-Type: AJO keeps it application/json")
        result.append((name, _value(spec, f"{key}[{index}] {name}")))
    return tuple(result)


def _payload(specs: Any, source: str) -> tuple[tuple[str, Value], ...]:
    if not isinstance(specs, list):
        raise ActionError(f"{source}: payload: give a list of {{path, type, value|from}} fields")
    result = []
    for index, spec in enumerate(specs):
        path = spec.get("path") if isinstance(spec, dict) else None
        if not isinstance(path, str) or not path:
            raise ActionError(f"{source}: payload[{index}]: each field needs a path like profile.email")
        result.append((path, _value(spec, f"payload[{index}] {path}")))
    return tuple(result)


def _auth(spec: Any, source: str) -> Auth:
    if not isinstance(spec, dict) or spec.get("type", "none") not in AUTH_TYPES:
        kind = spec.get("type") if isinstance(spec, dict) else spec
        raise ActionError(f"{source}: authentication type {kind!r}: use one of {', '.join(AUTH_TYPES)}")
    kind = spec.get("type", "none")
    where = f"{source}: authentication ({kind})"
    if kind == "basic":
        return Auth(kind, username=_need(spec, "username", where), password=str(spec.get("password", "")))
    if kind == "apiKey":
        location = spec.get("location", "header")
        if location not in ("header", "query"):
            raise ActionError(f"{where}: location {location!r}: use header or query")
        return Auth(kind, key_name=_need(spec, "name", where), key_value=_need(spec, "value", where), location=location)
    if kind == "customAuthorization":
        inject = spec.get("inject", {"location": "bearer"})
        location = inject.get("location", "bearer") if isinstance(inject, dict) else None
        if location not in ("bearer", "header", "query"):
            raise ActionError(f"{where}: inject.location {location!r}: use bearer, header or query")
        cache = spec.get("cacheSeconds", 3600)
        if not isinstance(cache, int | float) or cache <= 0:
            raise ActionError(f"{where}: cacheSeconds {cache!r}: a positive number of seconds (default 3600)")
        endpoint = _need(spec, "endpoint", where)
        check_url(endpoint, f"{where} endpoint")
        return Auth(
            kind,
            endpoint=endpoint,
            token_method=str(spec.get("method", "POST")).upper(),
            token_headers=dict(spec.get("headers", {})),
            token_body=dict(spec.get("body", {})),
            token_path=str(spec.get("tokenPath", "access_token")),
            cache_seconds=float(cache),
            location=location,
            key_name=str(inject.get("name", "Authorization")),
        )
    return Auth()


def _need(spec: dict[str, Any], key: str, where: str) -> str:
    value = spec.get(key)
    if not isinstance(value, str) or not value:
        raise ActionError(f"{where}: {key} is required")
    return value


def _lookup(context: Any, dotted: str) -> Any:
    current = context
    for part in dotted.split("."):
        if not isinstance(current, dict) or part not in current:
            return MISSING
        current = current[part]
    return current


def _resolved(value: Value | None, context: dict[str, Any]) -> Any:
    return None if value is None else value.resolve(context)


def _resolve_all(pairs: tuple[tuple[str, Value], ...], context: dict[str, Any]) -> list[tuple[str, Any]]:
    resolved = [(name, value.resolve(context)) for name, value in pairs]
    return [(name, v) for name, v in resolved if v is not MISSING]


def _has_type(value: Any, data_type: str) -> bool:
    if isinstance(value, bool) and data_type != "boolean":
        return False
    return isinstance(value, DATA_TYPES[data_type])


def _text(value: Any) -> str:
    return json.dumps(value) if isinstance(value, dict | list) else "" if value is None else str(value)


def _set_path(body: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    current = body
    for part in parts[:-1]:
        current = current.setdefault(part, {})
    current[parts[-1]] = value
