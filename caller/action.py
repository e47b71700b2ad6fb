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
``from`` is a dotted path into it. ``authentication`` is AJO's own block (``caller/auth.py``). Errors
name the field and what is allowed; what AJO itself would refuse but the lab must allow locally
(localhost, loopback addresses, other ports, plain http) becomes a warning (``caller/rules.py``).

AJO's payload rules (Journey Optimizer, "Configure a custom action"): an optional parameter with "allow
NULL values" that nobody filled in is sent as null; arrays lose their null elements and a null array is
sent as ``[]``; field names contain no ``.`` and do not start with ``$`` (``path`` is dotted, or a list).
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

from mtls_lab.caller.auth import Auth, parse_auth, with_endpoint
from mtls_lab.caller.rules import TIMEOUT_RULE, ActionError, check_field_name, check_url, timeout_allowed
from mtls_lab.vocabulary import AJOLimits

NAME = re.compile(r"^[A-Za-z0-9_]{1,30}$")
METHODS = ("POST", "PUT", "GET")
LIST_TYPES = ("listString", "listInteger")
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
K = TypeVar("K")
TRAILING_COMMA = re.compile(r",(\s*[}\]])")

__all__ = ["ActionError", "CustomAction", "Request", "Value", "build_request", "check_url", "load", "parse"]


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
        """The value for one call; MISSING when it is left out of the request.

        AJO's rules: an optional parameter that allows NULL and is not filled in is sent as null; arrays
        lose their null elements (``[1, null, 2, 3]`` is sent as ``[1, 2, 3]``) and a null array is sent as
        ``[]``. Without "allow NULL", a null or missing optional value is left out.
        """
        value = self.constant if self.source is None else _lookup(context, self.source)
        if value is MISSING or value is None:
            if self.allow_null and (value is None or not self.required):
                return [] if self.data_type in LIST_TYPES else None
            if self.required:
                state = "missing from" if value is MISSING else "null in"
                raise ActionError(
                    f"{self.where}: the required variable {self.source!r} is {state} the context: add it to the "
                    f"context file{', or allow NULL for this field' if value is None else ''}"
                )
            return MISSING
        if self.data_type and not _has_type(value, self.data_type):
            raise ActionError(
                f"{self.where}: {self.source!r} is {type(value).__name__} {value!r}, but the field is "
                f"{self.data_type}: fix the context or the field's dataType"
            )
        return [item for item in value if item is not None] if isinstance(value, list) else value


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
    payload: tuple[tuple[tuple[str, ...], Value], ...] = ()
    timeout: float = AJOLimits.TIMEOUT_DEFAULT
    warnings: tuple[str, ...] = ()

    def with_url(self, url: str) -> CustomAction:
        """The same action aimed at another endpoint (``--url``), with the warnings re-checked."""
        stale = set(check_url(self.url, "url"))
        warnings = [w for w in self.warnings if w not in stale] + check_url(url, "--url", "url")
        return dataclasses.replace(self, url=url, warnings=tuple(warnings))

    def with_token_url(self, url: str) -> CustomAction:
        """The same action whose custom authorization calls another token endpoint (``--token-url``)."""
        auth = with_endpoint(self.auth, url)
        stale = set(self.auth.warnings)
        warnings = [w for w in self.warnings if w not in stale] + list(auth.warnings)
        return dataclasses.replace(self, auth=auth, warnings=tuple(warnings))


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
    data, notes = read_lenient_json(path, "action")
    action = parse(data, source=str(path))
    return dataclasses.replace(action, warnings=(*notes, *action.warnings))


def load_context(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    data = read_json(path, "context")
    if not isinstance(data, dict):
        raise ActionError(f'{path}: the context must be a JSON object like {{"profile": {{...}}}}')
    return data


def read_json(path: Path, what: str) -> Any:
    return _decode(path, _read(path, what), what)


def read_lenient_json(path: Path, what: str) -> tuple[Any, list[str]]:
    """JSON, also with trailing commas before ``}`` or ``]``, as in Adobe's own bearer example (with a warning)."""
    text = _read(path, what)
    try:
        return json.loads(text), []
    except json.JSONDecodeError:
        relaxed = _drop_trailing_commas(text)
    try:
        data = json.loads(relaxed)
    except json.JSONDecodeError:
        return _decode(path, text, what), []  # raises with the original text's line and column
    return data, [
        f"{path}: trailing commas read anyway (Adobe's bearer example has them; whether AJO's editor accepts them "
        "is not documented): remove them before pasting into AJO"
    ]


def _read(path: Path, what: str) -> str:
    try:
        return path.read_text()
    except OSError as exc:
        raise ActionError(f"{path}: cannot read the {what} file ({exc.strerror}): check the path") from exc


def _decode(path: Path, text: str, what: str) -> Any:
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
    timeout = data.get("timeout", int(AJOLimits.TIMEOUT_DEFAULT))
    if not isinstance(timeout, int | float) or isinstance(timeout, bool) or not timeout_allowed(timeout):
        raise ActionError(f"{source}: timeout {timeout!r}: {TIMEOUT_RULE} (default {AJOLimits.TIMEOUT_DEFAULT:g})")
    auth = parse_auth(data.get("authentication", {"type": "none"}), source)
    return CustomAction(
        name=name,
        url=url,
        method=method,
        description=str(data.get("description", "")),
        dynamic_path=_value(data["dynamicPath"], "dynamicPath") if "dynamicPath" in data else None,
        headers=_named_values(data.get("headers", []), "headers", source),
        query=_named_values(data.get("query", []), "query", source),
        auth=auth,
        payload=_payload(payload_spec, source),
        timeout=float(timeout),
        warnings=(*warnings, *auth.warnings),
    )


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
        for names, value in _resolve_all(action.payload, context):
            _set_path(body, names, value)
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


def _payload(specs: Any, source: str) -> tuple[tuple[tuple[str, ...], Value], ...]:
    """Fields by ``path``: "a.b" (each part a field name) or ["a", "b"]; names follow AJO's rules."""
    if not isinstance(specs, list):
        raise ActionError(f"{source}: payload: give a list of {{path, type, value|from}} fields")
    result = []
    for index, spec in enumerate(specs):
        path = spec.get("path") if isinstance(spec, dict) else None
        if isinstance(path, str) and path:
            names = tuple(path.split("."))
        elif isinstance(path, list) and path and all(isinstance(n, str) for n in path):
            names = tuple(path)
        else:
            raise ActionError(f"{source}: payload[{index}]: each field needs a path like profile.email")
        where = f"{source}: payload[{index}] {'.'.join(names)}"
        for name in names:
            check_field_name(name, where)
        result.append((names, _value(spec, f"payload[{index}] {'.'.join(names)}")))
    return tuple(result)


def _lookup(context: Any, dotted: str) -> Any:
    current = context
    for part in dotted.split("."):
        if not isinstance(current, dict) or part not in current:
            return MISSING
        current = current[part]
    return current


def _resolved(value: Value | None, context: dict[str, Any]) -> Any:
    return None if value is None else value.resolve(context)


def _resolve_all(pairs: tuple[tuple[K, Value], ...], context: dict[str, Any]) -> list[tuple[K, Any]]:
    resolved = [(name, value.resolve(context)) for name, value in pairs]
    return [(name, v) for name, v in resolved if v is not MISSING]


def _has_type(value: Any, data_type: str) -> bool:
    if isinstance(value, bool) and data_type != "boolean":
        return False
    return isinstance(value, DATA_TYPES[data_type])


def _text(value: Any) -> str:
    return json.dumps(value) if isinstance(value, dict | list) else "" if value is None else str(value)


def _set_path(body: dict[str, Any], parts: tuple[str, ...], value: Any) -> None:
    current = body
    for part in parts[:-1]:
        current = current.setdefault(part, {})
    current[parts[-1]] = value


def _drop_trailing_commas(text: str) -> str:
    """Remove commas that close an object or array, outside strings."""
    out, in_string, escaped = [], False, False
    for index, char in enumerate(text):
        if in_string:
            in_string = not (char == '"' and not escaped)
            escaped = char == "\\" and not escaped
        elif char == '"':
            in_string = True
        elif char == "," and TRAILING_COMMA.match(text, index):
            continue
        out.append(char)
    return "".join(out)
