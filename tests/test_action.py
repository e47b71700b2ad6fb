"""The custom-action format: validation messages, warnings, variables, payload and the examples."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mtls_lab.caller.action import ActionError, build_request, load, load_context, parse

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
    assert action.auth.kind == "customAuthorization" and action.auth.cache_seconds == 3600
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
    assert any("IP address" in w for w in parse({**BASE, "url": "https://10.1.2.3/"}).warnings)
    assert any("port 8443" in w for w in parse({**BASE, "url": "https://crm.example.com:8443/"}).warnings)


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
