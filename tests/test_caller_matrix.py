"""The caller against the reference server: every mode, identity, TLS version and client behaviour.

The expectations are written down here, from docs/ground-truth.md, not computed by the code under test.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from mtls_lab.certs.layout import LabPaths
from mtls_lab.errors import ExitCode
from mtls_lab.server.settings import Mode
from tests.conftest import ServerFactory
from tests.support.ajo_call import ajo_call
from tests.support.expectations import (
    JAVA_SENDS_WHEN_ROOT_NAMED,
    PRESENTED,
    lab_identity,
    lab_server_answer,
)

IDENTITIES = [*PRESENTED, "none"]


@dataclass(frozen=True)
class Row:
    mode: Mode
    tls: str
    who: str
    behavior: str

    @property
    def id(self) -> str:
        return f"{self.mode.value}/tls{self.tls}/{self.who}/{self.behavior}"

    def sent(self) -> bool:
        if self.mode is Mode.TLS or self.who == "none":
            return False
        return self.behavior == "openssl" or self.who in JAVA_SENDS_WHEN_ROOT_NAMED

    def expected(self) -> str:
        return lab_server_answer(self.mode.value, self.tls, self.who if self.sent() else None)


ROWS = [Row(m, t, w, b) for m in Mode for t in ("1.2", "1.3") for w in IDENTITIES for b in ("java", "openssl")]


@pytest.mark.parametrize("row", ROWS, ids=lambda r: r.id)
def test_caller_verdict(row: Row, pki: LabPaths, lab_server: ServerFactory) -> None:
    server = lab_server(mode=row.mode)
    who, chain = lab_identity(row.who)
    verdict = ajo_call(pki, server.url, who, behavior=row.behavior, tls=row.tls, chain=chain)
    seen = f"alert:{verdict.alert}" if verdict.alert else f"http:{verdict.status}"
    assert seen == row.expected(), verdict.explanation
    assert verdict.client_cert_sent is row.sent()
    assert verdict.tls_version == f"TLSv{row.tls}"
    if verdict.alert:
        assert verdict.outcome.value == "tls_alert" and verdict.jo_status_code == "internalError"
        assert verdict.outcome.exit_code == ExitCode.TLS_REJECTED
        # TLS 1.2 rejects during the handshake, TLS 1.3 after the client finished it
        assert verdict.phase.value == ("handshake" if row.tls == "1.2" else "after_handshake")
    else:
        assert verdict.jo_status_code == f"http_{verdict.status}" and verdict.phase.value == "http"
    assert verdict.explanation and verdict.fix
