"""The action's ``authentication`` block: none, basic, API key, and AJO's custom authorization payload.

``customAuthorization`` is AJO's documented payload, field for field (Journey Optimizer, "External data
sources", section "Custom authentication mode"; the custom-action page links to it), so that what a user
pasted into AJO can be pasted here unchanged::

    {"type": "customAuthorization",
     "endpoint": URL, "method": "GET" | "POST", "headers": {NAME: VALUE},
     "body": {"bodyType": "form" | "json", "bodyParams": {KEY: VALUE}},   # mandatory for POST
     "tokenInResponse": "response" | "json://<path>",
     "cacheDuration": {"duration": N | "expiryInResponse": "json://<path>",
                       "timeUnit": "milliseconds" | ... | "years"},        # default: 1 hour
     "authorizationType": "bearer" | "header" | "queryParam",
     "tokenTarget": NAME}                                                 # for header and queryParam

plus, for certificate-based custom authentication (same page, "#certificate-credential"),
``"subType": "certificateCredential"`` and ``"aud"``. ``EncodeBase64(...)`` is the only function allowed
in string values. An unknown field is an error that names the documented field it most likely meant.

Where Adobe's text is silent the choice is a model, said so in the warning or docstring:
- ``authorizationType`` absent means ``bearer`` (Adobe's bearer example has none) and its value is read
  without regard to case (Adobe's Entra ID example writes ``"Bearer"``);
- a month is 30 days and a year 365 days;
- a ``form`` body cannot carry a nested object: the lab leaves it out, with a warning (the older text of
  Adobe's page says only flat key-value pairs are sent; the current one says nested objects are
  supported, which a ``json`` body does);
- a trailing comma (Adobe's bearer example ends its object with one) is read with a warning.
"""

from __future__ import annotations

import base64
import dataclasses
import difflib
import enum
import re
from dataclasses import dataclass, field
from typing import Any, TypeVar

from mtls_lab.caller.rules import ActionError, check_url

JSON_SELECTOR = "json://"
RESPONSE = "response"
DEFAULT_CACHE_SECONDS = 3600.0  # "The cache duration by default is 1 hour."
MAX_SCOPE = 1000
FUNCTION = re.compile(r"\b([A-Z][a-z]+(?:[A-Z][A-Za-z]*|[0-9]+)+)\(([^()]*)\)")
ALLOWED_FUNCTIONS = {"EncodeBase64", "Encode64"}  # the example's name, and the name in Adobe's note
E = TypeVar("E", bound=enum.Enum)


class AuthType(enum.Enum):
    NONE = "none"
    BASIC = "basic"
    API_KEY = "apiKey"
    CUSTOM = "customAuthorization"


class BodyType(enum.Enum):
    """How the token call's ``bodyParams`` are serialized (UTF-8 both)."""

    FORM = "form"  # application/x-www-form-urlencoded: key1=value1&key2=value2
    JSON = "json"  # application/json: {"key1": "value1", ...}

    @property
    def content_type(self) -> str:
        kind = "application/x-www-form-urlencoded" if self is BodyType.FORM else "application/json"
        return f"{kind}; charset=UTF-8"


class AuthorizationType(enum.Enum):
    """Where the token goes in the action's request."""

    BEARER = "bearer"  # Authorization: Bearer <token>
    HEADER = "header"  # <tokenTarget>: <token>
    QUERY_PARAM = "queryParam"  # ?<tokenTarget>=<token>


class TimeUnit(enum.Enum):
    MILLISECONDS = "milliseconds"
    SECONDS = "seconds"
    MINUTES = "minutes"
    HOURS = "hours"
    DAYS = "days"
    MONTHS = "months"  # model: 30 days
    YEARS = "years"  # model: 365 days

    @property
    def seconds(self) -> float:
        return _UNIT_SECONDS[self]


_UNIT_SECONDS = {
    TimeUnit.MILLISECONDS: 0.001,
    TimeUnit.SECONDS: 1.0,
    TimeUnit.MINUTES: 60.0,
    TimeUnit.HOURS: 3600.0,
    TimeUnit.DAYS: 86400.0,
    TimeUnit.MONTHS: 30 * 86400.0,
    TimeUnit.YEARS: 365 * 86400.0,
}


class SubType(enum.Enum):
    CERTIFICATE_CREDENTIAL = "certificateCredential"  # sign a JWT client assertion with Adobe's certificate


FIELDS: dict[AuthType, tuple[str, ...]] = {
    AuthType.NONE: ("type",),
    AuthType.BASIC: ("type", "username", "password"),
    AuthType.API_KEY: ("type", "name", "value", "location"),
    AuthType.CUSTOM: (
        "type",
        "subType",
        "aud",
        "endpoint",
        "method",
        "headers",
        "body",
        "tokenInResponse",
        "cacheDuration",
        "authorizationType",
        "tokenTarget",
    ),
}
BODY_FIELDS = ("bodyType", "bodyParams")
CACHE_FIELDS = ("duration", "expiryInResponse", "timeUnit")
# The lab's names before it followed AJO's payload, and what replaces each.
REPLACED = {
    "tokenPath": 'tokenInResponse, e.g. "json://access_token" (or "response" for a bare token)',
    "cacheSeconds": 'cacheDuration, e.g. {"duration": 3600, "timeUnit": "seconds"}',
    "inject": 'authorizationType ("bearer", "header" or "queryParam"), with tokenTarget naming the header or '
    "query parameter",
}


@dataclass(frozen=True)
class CacheDuration:
    """How long a token stays cached: a fixed duration, or a number read from the token call's answer."""

    unit: TimeUnit = TimeUnit.SECONDS
    duration: float | None = DEFAULT_CACHE_SECONDS
    expiry_in_response: str | None = None  # a json:// selector

    @property
    def fixed_seconds(self) -> float | None:
        return None if self.duration is None else self.duration * self.unit.seconds


@dataclass(frozen=True)
class CustomAuthorization:
    """AJO's custom authorization payload, read and checked (strings already have EncodeBase64 applied)."""

    endpoint: str
    method: str
    headers: dict[str, str] = field(default_factory=dict)
    body_type: BodyType | None = None
    body_params: dict[str, Any] = field(default_factory=dict)
    token_in_response: str = JSON_SELECTOR + "access_token"
    cache: CacheDuration = field(default_factory=CacheDuration)
    authorization_type: AuthorizationType = AuthorizationType.BEARER
    token_target: str | None = None
    sub_type: SubType | None = None
    aud: str | None = None

    @property
    def certificate_credential(self) -> bool:
        return self.sub_type is SubType.CERTIFICATE_CREDENTIAL

    @property
    def client_id(self) -> str:
        return str(self.body_params.get("client_id", ""))


@dataclass(frozen=True)
class Auth:
    """The authentication block: one of AJO's four modes."""

    kind: AuthType = AuthType.NONE
    username: str = ""
    password: str = ""
    key_name: str = ""
    key_value: str = ""
    location: str = "header"  # apiKey: header or query
    custom: CustomAuthorization | None = None
    warnings: tuple[str, ...] = ()


def parse_auth(spec: Any, source: str) -> Auth:
    """Read an ``authentication`` block; ActionError (one line, naming the field) for anything AJO would refuse."""
    if not isinstance(spec, dict):
        raise ActionError(f'{source}: authentication: give an object like {{"type": "none"}}')
    kind = _choice(spec.get("type", "none"), AuthType, f"{source}: authentication type")
    where = f"{source}: authentication ({kind.value})"
    _known_fields(spec, FIELDS[kind], where)
    if kind is AuthType.BASIC:
        return Auth(kind, username=_text(spec, "username", where), password=str(spec.get("password", "")))
    if kind is AuthType.API_KEY:
        location = spec.get("location", "header")
        if location not in ("header", "query"):
            raise ActionError(f"{where}: location {location!r}: use header or query")
        return Auth(kind, key_name=_text(spec, "name", where), key_value=_text(spec, "value", where), location=location)
    if kind is AuthType.CUSTOM:
        warnings: list[str] = []
        return Auth(kind, custom=_custom(spec, where, warnings), warnings=tuple(warnings))
    return Auth()


def with_endpoint(auth: Auth, endpoint: str) -> Auth:
    """The same authentication with its token endpoint replaced (``--token-url``), warnings re-checked.

    An ``aud`` equal to the old endpoint follows it: Adobe's Entra ID example sets both to the same URL."""
    if auth.custom is None:
        raise ActionError("--token-url: the action's authentication is not customAuthorization: remove --token-url")
    stale = set(check_url(auth.custom.endpoint, "endpoint", "token endpoint", action=False))
    fresh = check_url(endpoint, "--token-url", "token endpoint", action=False)
    warnings = [w for w in auth.warnings if w not in stale] + fresh
    aud = endpoint if auth.custom.aud == auth.custom.endpoint else auth.custom.aud
    custom = dataclasses.replace(auth.custom, endpoint=endpoint, aud=aud)
    return Auth(auth.kind, custom=custom, warnings=tuple(warnings))


def json_path(selector: str, document: Any) -> Any:
    """The value a ``json://a.b`` selector names in a parsed JSON document, or None (dots: model)."""
    value = document
    for part in selector.removeprefix(JSON_SELECTOR).split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


# --- custom authorization -----------------------------------------------------------------------


def _custom(spec: dict[str, Any], where: str, warnings: list[str]) -> CustomAuthorization:
    sub_type = _choice(spec["subType"], SubType, f"{where}: subType") if "subType" in spec else None
    endpoint = _functions(_text(spec, "endpoint", where), f"{where}: endpoint", warnings)
    warnings += check_url(endpoint, f"{where} endpoint", "token endpoint", action=False)
    method = _text(spec, "method", where).upper()
    if method not in ("GET", "POST"):
        raise ActionError(f"{where}: method {method!r}: the token call uses GET or POST")
    headers = _headers(spec.get("headers", {}), where, warnings)
    body_type, params = _body(spec.get("body"), method, where, warnings)
    authorization, target = _injection(spec, where, warnings)
    custom = CustomAuthorization(
        endpoint=endpoint,
        method=method,
        headers=headers,
        body_type=body_type,
        body_params=params,
        token_in_response=_selector(spec, "tokenInResponse", where, allow_response=True),
        cache=_cache(spec.get("cacheDuration"), where),
        authorization_type=authorization,
        token_target=target,
        sub_type=sub_type,
        aud=_functions(str(spec["aud"]), f"{where}: aud", warnings) if "aud" in spec else None,
    )
    if custom.certificate_credential:
        _certificate_guardrails(custom, where, warnings)
    elif "aud" in spec:
        raise ActionError(
            f'{where}: aud belongs to certificate-based authentication: add "subType": '
            '"certificateCredential", or remove aud'
        )
    return custom


def _headers(spec: Any, where: str, warnings: list[str]) -> dict[str, str]:
    if not isinstance(spec, dict) or not all(isinstance(v, str) for v in spec.values()):
        raise ActionError(f'{where}: headers: give an object of header names and string values, like {{"x-a": "b"}}')
    return {name: _functions(value, f"{where}: headers.{name}", warnings) for name, value in spec.items()}


def _body(spec: Any, method: str, where: str, warnings: list[str]) -> tuple[BodyType | None, dict[str, Any]]:
    if spec is None:
        if method == "POST":
            raise ActionError(
                f'{where}: body is mandatory with POST: add {{"bodyType": "form", "bodyParams": {{...}}}}'
            )
        return None, {}
    if not isinstance(spec, dict):
        raise ActionError(f'{where}: body: give {{"bodyType": "form" or "json", "bodyParams": {{...}}}}')
    _known_fields(spec, BODY_FIELDS, f"{where}: body")
    if "bodyType" not in spec or "bodyParams" not in spec:
        raise ActionError(f"{where}: body needs bodyType (form or json) and bodyParams (an object)")
    body_type = _choice(spec["bodyType"], BodyType, f"{where}: body.bodyType")
    params = spec["bodyParams"]
    if not isinstance(params, dict):
        raise ActionError(f"{where}: body.bodyParams: give an object of key-value pairs")
    if method == "GET":
        warnings.append("the token call is a GET: AJO sends a body with POST only, so body is not sent")
    return body_type, _params(params, body_type, where, warnings)


def _params(params: dict[str, Any], body_type: BodyType, where: str, warnings: list[str]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in params.items():
        if isinstance(value, dict | list) and body_type is BodyType.FORM:
            warnings.append(
                f"body.bodyParams.{key} is nested: a form body carries flat key-value pairs only, so the lab leaves it "
                "out (model: Adobe's page once said nested objects are not sent; a json body sends them)"
            )
            continue
        result[key] = _deep_functions(value, f"{where}: body.bodyParams.{key}", warnings)
    return result


def _injection(spec: dict[str, Any], where: str, warnings: list[str]) -> tuple[AuthorizationType, str | None]:
    raw = spec.get("authorizationType", AuthorizationType.BEARER.value)
    kind = _choice(raw, AuthorizationType, f"{where}: authorizationType", ignore_case=True)
    target = spec.get("tokenTarget")
    if kind is not AuthorizationType.BEARER and (not isinstance(target, str) or not target):
        raise ActionError(
            f"{where}: tokenTarget is mandatory with authorizationType {kind.value}: name the "
            f"{'header' if kind is AuthorizationType.HEADER else 'query parameter'}"
        )
    if kind is AuthorizationType.BEARER and target is not None:
        warnings.append("tokenTarget is ignored with authorizationType bearer (the token goes in Authorization)")
        target = None
    return kind, target


def _cache(spec: Any, where: str) -> CacheDuration:
    if spec is None:
        return CacheDuration()
    if not isinstance(spec, dict):
        raise ActionError(f'{where}: cacheDuration: give {{"duration": N, "timeUnit": "minutes"}}')
    _known_fields(spec, CACHE_FIELDS, f"{where}: cacheDuration")
    unit = _choice(spec.get("timeUnit"), TimeUnit, f"{where}: cacheDuration.timeUnit")
    if ("duration" in spec) == ("expiryInResponse" in spec):
        raise ActionError(
            f"{where}: cacheDuration: give either duration or expiryInResponse (they are mutually exclusive)"
        )
    if "expiryInResponse" in spec:
        return CacheDuration(unit, None, _selector(spec, "expiryInResponse", f"{where}: cacheDuration"))
    duration = spec["duration"]
    if not isinstance(duration, int) or isinstance(duration, bool) or duration < 0:
        raise ActionError(f"{where}: cacheDuration.duration {duration!r}: give an integer, 0 or more")
    return CacheDuration(unit, float(duration))


# Adobe's guardrails for certificate-based authentication: Journey Optimizer, "External data sources",
# section "Certificate-based authentication" (AdobeDocs/journey-optimizer.en,
# help/using/datasource/external-data-sources.md; docs/adobe-facts.md marks them unverified: the stored
# versions predate the section). Each error names the rule.
GUARDRAIL = "Adobe's certificate-based authentication guardrail"


def _certificate_guardrails(custom: CustomAuthorization, where: str, warnings: list[str]) -> None:
    """The guardrails Adobe lists for certificate-based custom authentication, one error each."""
    if custom.aud is None or not custom.aud:
        raise ActionError(
            f"{where}: aud is required with certificateCredential: the token endpoint's URL, as "
            "the identity provider expects it (Entra ID: the endpoint URL)"
        )
    if not custom.endpoint.startswith("https://"):
        raise ActionError(f"{where}: endpoint: certificateCredential needs an https token endpoint ({GUARDRAIL})")
    if "?" in custom.endpoint:
        raise ActionError(
            f"{where}: endpoint: the token URL has a '?': {GUARDRAIL} is a token URL without a query string "
            "(a '?' is often the authorization endpoint pasted instead): give the token endpoint's URL"
        )
    if custom.method != "POST":
        raise ActionError(
            f'{where}: method must be POST with certificateCredential ({GUARDRAIL}): set "method": "POST"'
        )
    client_id = custom.body_params.get("client_id")
    if not isinstance(client_id, str) or not client_id or client_id != client_id.strip():
        raise ActionError(
            f"{where}: body.bodyParams.client_id: required, not empty, without leading or trailing "
            f"spaces ({GUARDRAIL}; the identity provider would refuse the assertion with an opaque error)"
        )
    scope = custom.body_params.get("scope")
    if scope is not None and (not isinstance(scope, str) or len(scope) > MAX_SCOPE):
        raise ActionError(
            f"{where}: body.bodyParams.scope: one space-separated string of at most {MAX_SCOPE} characters "
            f"({GUARDRAIL}): shorten it"
        )
    if custom.body_type is not BodyType.FORM:
        warnings.append(
            "certificateCredential with a json body: Adobe's examples use form, and OAuth token "
            "endpoints (Entra ID, Okta) read form bodies only"
        )
    for injected in ("client_assertion", "client_assertion_type"):
        if injected in custom.body_params:
            raise ActionError(f"{where}: body.bodyParams.{injected}: AJO injects it at run time: remove it")


# --- helpers ------------------------------------------------------------------------------------


def _known_fields(spec: dict[str, Any], allowed: tuple[str, ...], where: str) -> None:
    for key in spec:
        if key in allowed:
            continue
        if key in REPLACED:
            raise ActionError(f"{where}: {key} is not an AJO field (the lab's old name): use {REPLACED[key]}")
        lowered = {name.lower(): name for name in allowed}
        guess = lowered.get(key.lower()) or next(iter(difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)), None)
        hint = f"did you mean {guess}?" if guess else f"AJO's fields here: {', '.join(allowed)}"
        raise ActionError(f"{where}: unknown field {key!r}: {hint}")


def _choice(value: Any, kind: type[E], where: str, ignore_case: bool = False) -> E:
    names = [member.value for member in kind]
    for member in kind:
        if value == member.value or (ignore_case and isinstance(value, str) and value.lower() == member.value.lower()):
            return member
    guess = difflib.get_close_matches(str(value), names, n=1, cutoff=0.6)
    hint = f" (did you mean {guess[0]}?)" if guess else ""
    raise ActionError(f"{where} {value!r}{hint}: use one of {', '.join(names)}")


def _text(spec: dict[str, Any], key: str, where: str) -> str:
    value = spec.get(key)
    if not isinstance(value, str) or not value:
        raise ActionError(f"{where}: {key} is required, a non-empty string")
    return value


def _selector(spec: dict[str, Any], key: str, where: str, allow_response: bool = False) -> str:
    value = spec.get(key)
    if allow_response and value == RESPONSE:
        return RESPONSE
    if isinstance(value, str) and value.startswith(JSON_SELECTOR) and len(value) > len(JSON_SELECTOR):
        return value
    choices = '"response" or ' if allow_response else ""
    raise ActionError(f'{where}: {key} {value!r}: give {choices}a selector like "json://access_token"')


def _functions(text: str, where: str, warnings: list[str]) -> str:
    """``EncodeBase64(x)`` replaced by base64 of x (UTF-8); any other function is refused, as AJO allows none."""

    def apply(match: re.Match[str]) -> str:
        name, argument = match.group(1), match.group(2)
        if name not in ALLOWED_FUNCTIONS:
            raise ActionError(
                f"{where}: {name}(...): EncodeBase64(...) is the only function AJO allows in the authentication payload"
            )
        if name == "Encode64":
            warnings.append(
                "Encode64(...) read as EncodeBase64(...): Adobe's note names it Encode64, its example "
                "EncodeBase64 (model)"
            )
        return base64.b64encode(argument.encode()).decode()

    return FUNCTION.sub(apply, text)


def _deep_functions(value: Any, where: str, warnings: list[str]) -> Any:
    if isinstance(value, str):
        return _functions(value, where, warnings)
    if isinstance(value, dict):
        return {k: _deep_functions(v, f"{where}.{k}", warnings) for k, v in value.items()}
    if isinstance(value, list):
        return [_deep_functions(v, where, warnings) for v in value]
    return value
