"""Shortcuts for calling with the AJO-like caller in tests."""

from __future__ import annotations

from mtls_lab.caller.action import parse
from mtls_lab.caller.call import CallOptions, call, lab_identity
from mtls_lab.caller.tls import Chain, ClientBehavior
from mtls_lab.caller.verdict import Verdict
from mtls_lab.certs.layout import LabPaths


def ajo_call(
    pki: LabPaths,
    url: str,
    identity: str = "adobe",
    *,
    behavior: str = "java",
    tls: str | None = None,
    chain: str = "full",
    retries: int = 0,
    method: str = "POST",
    timeout: float | None = None,
    **action: object,
) -> Verdict:
    spec = {"name": "test_call", "url": url + "/custom-action", "method": method, **action}
    options = CallOptions(
        pki=pki,
        identity=lab_identity(pki, identity, Chain(chain)),
        behavior=ClientBehavior(behavior),
        tls=tls,
        retries=retries,
        timeout=timeout,
    )
    return call(parse(spec), {}, options)
