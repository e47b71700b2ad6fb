"""The custom-action format: validation messages, warnings, variables, payload and the examples."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from mtls_lab.caller.action import ActionError, build_request, load, load_context, parse
from mtls_lab.caller.auth import AuthType

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
BASE = {"name": "profile_sync", "url": "https://crm.example.com/api", "method": "POST"}


def test_the_profile_sync_example_builds_the_request_ajo_sends() -> None:
    action = load(EXAMPLES / "profile-sync-action.json")
    request = build_request(action, load_context(EXAMPLES / "profile-sync-context.json"))
    assert request.method == "POST"
    assert request.url == "https://localhost:8443/ajo/v1/profile-sync/CRM-000042"
    assert request.headers["X-Journey"] == "Post-purchase follow-up"
    assert request.headers["Content-Type"] == "application/json"
    assert request.params == {"locale": "en-US"}
    assert request.json_body == {
        "profile": {"email": "ada@example.com", "firstName": "Ada", "loyaltyPoints": 1200, "phone": None},
        "event": {"type": "commerce.purchases"},
        "source": "ajo-custom-action",
    }


def test_the_custom_auth_example_parses() -> None:
    action = load(EXAMPLES / "custom-auth-action.json")
    assert action.auth.kind is AuthType.CUSTOM and action.auth.custom is not None
    assert action.auth.custom.cache.fixed_seconds == 55 * 60
    assert action.auth.custom.headers == {"Authorization": "Basic " + base64.b64encode(b"ajo-lab:lab-secret").decode()}
    assert action.method == "PUT" and action.timeout == 10


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"name": "a" * 31}, "at most 30 characters"),
        ({"name": "has-dash"}, "letters, digits and underscore"),
        ({"method": "DELETE"}, "POST, PUT or GET"),
        ({"url": "ftp://x"}, "absolute URL"),
        ({"url": "https://host:99999/"}, "port"),
        ({"timeout": 31}, "1 to 30 seconds"),
        ({"timeout": 0}, "1 to 30 seconds"),
        ({"authentication": {"type": "oauth"}}, "use one of none, basic, apiKey, customAuthorization"),
        ({"authentication": {"type": "apiKey", "name": "k", "value": "v", "location": "cookie"}}, "header or query"),
        ({"authentication": {"type": "basic"}}, "username is required"),
        ({"authentication": {"type": "customAuthorization"}}, "endpoint is required"),
        ({"url": "https://10.1.2.3/"}, "AJO refuses IP addresses"),
        ({"payload": [{"path": "profile.$email", "value": 1}]}, "start with '$'"),
        ({"payload": [{"path": ["profile", "e.mail"], "value": 1}]}, "no '.' in payload field names"),
        ({"payload": [{"path": "profile..email", "value": 1}]}, "no '.' in payload field names"),
        ({"headers": [{"name": "Content-Type", "value": "text/plain"}]}, "application/json"),
        ({"headers": [{"type": "constant", "value": "x"}]}, "headers[0]: each entry needs a name"),
        ({"payload": [{"path": "a", "type": "variable"}]}, "payload[0] a: a variable needs from"),
        ({"payload": [{"path": "a", "type": "formula", "value": 1}]}, "use constant or variable"),
        ({"payload": [{"path": "a", "value": 1, "dataType": "blob"}]}, "dataType 'blob'"),
        ({"method": "GET", "payload": [{"path": "a", "value": 1}]}, "POST or PUT only"),
    ],
)
def test_invalid_actions_name_the_field_and_what_is_allowed(change: dict[str, object], message: str) -> None:
    with pytest.raises(ActionError, match=None) as error:
        parse({**BASE, **change})
    assert message in str(error.value)


def test_a_valid_action_has_no_warnings_and_siblings_get_them() -> None:
    assert parse(BASE).warnings == ()
    assert any("plain http" in w for w in parse({**BASE, "url": "http://crm.example.com/"}).warnings)
    assert any("IP address 127.0.0.1" in w for w in parse({**BASE, "url": "https://127.0.0.1/"}).warnings)
    assert any("port 8443" in w for w in parse({**BASE, "url": "https://crm.example.com:8443/"}).warnings)


@pytest.mark.parametrize(
    ("url", "refused_port"),
    [
        ("https://crm.example.com/", None),
        ("https://crm.example.com:443/", None),
        ("http://crm.example.com:80/", None),
        ("https://crm.example.com:80/", 80),  # AJO: 80 for http and 443 for https, not either for both
        ("http://crm.example.com:443/", 443),
    ],
)
def test_ports_are_checked_by_scheme(url: str, refused_port: int | None) -> None:
    warnings = [w for w in parse({**BASE, "url": url}).warnings if "port" in w]
    assert warnings == ([] if refused_port is None else [warnings[0]])
    if refused_port is not None:
        assert f"port {refused_port} with" in warnings[0]


def test_payload_field_names_follow_ajos_rules() -> None:
    action = parse({**BASE, "payload": [{"path": ["profile", "email"], "value": "a@b"}, {"path": "n$", "value": 1}]})
    assert build_request(action, {}).json_body == {"profile": {"email": "a@b"}, "n$": 1}


def test_variables_required_optional_and_null() -> None:
    action = parse(
        {
            **BASE,
            "payload": [
                {"path": "email", "type": "variable", "from": "profile.email"},
                {"path": "phone", "type": "variable", "from": "profile.phone", "required": False},
                {"path": "fax", "type": "variable", "from": "profile.fax", "required": False, "allowNull": True},
            ],
        }
    )
    body = build_request(action, {"profile": {"email": "a@b", "phone": None, "fax": None}}).json_body
    assert body == {"email": "a@b", "fax": None}  # optional null dropped unless NULL is allowed
    # AJO: "parameters not filled in by a journey practitioner are sent as Null" when NULL is allowed
    assert build_request(action, {"profile": {"email": "a@b"}}).json_body == {"email": "a@b", "fax": None}
    with pytest.raises(ActionError, match=r"payload\[0\] email: the required variable 'profile.email' is missing"):
        build_request(action, {"profile": {}})
    with pytest.raises(ActionError, match=r"is null in the context.*allow NULL"):
        build_request(action, {"profile": {"email": None}})


def test_variable_types_are_checked() -> None:
    action = parse({**BASE, "payload": [{"path": "n", "type": "variable", "from": "p.n", "dataType": "integer"}]})
    assert build_request(action, {"p": {"n": 3}}).json_body == {"n": 3}
    with pytest.raises(ActionError, match="is str '3', but the field is integer"):
        build_request(action, {"p": {"n": "3"}})
    with pytest.raises(ActionError, match="is bool"):
        build_request(action, {"p": {"n": True}})


def test_get_has_no_body_and_dynamic_path_is_escaped() -> None:
    action = parse({**BASE, "method": "GET", "dynamicPath": {"type": "variable", "from": "profile.id"}})
    request = build_request(action, {"profile": {"id": "a b/c"}})
    assert request.json_body is None
    assert request.url == "https://crm.example.com/api/a%20b/c"
    assert build_request(action, {"profile": {"id": "x"}}, path="override").url.endswith("/api/override")


def test_malformed_json_reports_line_and_column(tmp_path: Path) -> None:
    broken = tmp_path / "action.json"
    broken.write_text('{\n  "name": "x",\n  "url": oops\n}')
    with pytest.raises(ActionError, match=r"action.json:3:10: invalid JSON"):
        load(broken)
    with pytest.raises(ActionError, match="cannot read the action file"):
        load(tmp_path / "missing.json")
    context = tmp_path / "context.json"
    context.write_text(json.dumps([1, 2]))
    with pytest.raises(ActionError, match="must be a JSON object"):
        load_context(context)


def test_arrays_lose_their_nulls_and_a_null_array_is_empty() -> None:
    """AJO: [1, null, 2, 3] is sent as [1, 2, 3] even with NULL allowed; a null array is sent as []."""
    action = parse(
        {
            **BASE,
            "payload": [
                {"path": "ids", "type": "variable", "from": "p.ids", "dataType": "listInteger", "allowNull": True},
                {
                    "path": "tags",
                    "type": "variable",
                    "from": "p.tags",
                    "dataType": "listString",
                    "allowNull": True,
                    "required": False,
                },
                {"path": "kept", "type": "constant", "value": ["a", None, "b"]},
                {"path": "gone", "type": "variable", "from": "p.gone", "dataType": "listString", "required": False},
            ],
        }
    )
    body = build_request(action, {"p": {"ids": [1, None, 2, 3], "tags": None, "gone": None}}).json_body
    assert body == {"ids": [1, 2, 3], "tags": [], "kept": ["a", "b"]}  # without NULL allowed, a null list is left out
    missing = build_request(action, {"p": {"ids": [4]}}).json_body
    assert missing == {"ids": [4], "tags": [], "kept": ["a", "b"]}


def test_a_trailing_comma_is_read_with_a_warning(tmp_path: Path) -> None:
    """Adobe's own bearer example ends with "},\n  },": pasted unchanged it must still load."""
    path = tmp_path / "action.json"
    path.write_text('{"name": "x", "url": "https://crm.example.com/", "payload": [{"path": "a", "value": "1,]"},],}')
    action = load(path)
    assert build_request(action, {}).json_body == {"a": "1,]"}  # the comma inside the string is kept
    assert any("trailing commas" in w for w in action.warnings)
    path.write_text('{"name": "x", "url": "https://crm.example.com/",, }')
    with pytest.raises(ActionError, match="invalid JSON"):  # a stray comma elsewhere is still an error
        load(path)
