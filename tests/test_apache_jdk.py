"""The shared harnesses, proven on each other: the real Apache (tests/support/apache.py) judged by a real
JDK 17 HttpClient (tests/support/jdk_client.py) and by a client that offers post-handshake authentication.

- ``<Location /secure>`` client auth on TLS 1.3: the JDK offers no post-handshake auth, Apache answers 403
  "Cannot perform Post-Handshake Authentication"; a client that offers it gets 200 with its certificate;
- the same on TLS 1.2: Apache renegotiates, the JDK answers, 200;
- at the virtual host: 200 with the certificate, a rejected handshake without one.
"""

from __future__ import annotations

import ssl

import httpx
import pytest

from mtls_lab.certs.layout import CA, Identity, LabPaths
from mtls_lab.server.stack_configs import ClientAuth
from tests.support.apache import ApacheServers, ApacheSite
from tests.support.jdk_client import JdkCall, JdkClient

SUBJECT = "CN=ajo-journeys.aep-mtls.adobe.com"
ADOBE = Identity.ADOBE
PER_PATH = ApacheSite(ClientAuth.REQUIRED, location="/secure", tls="both")
PER_PATH_12 = ApacheSite(ClientAuth.REQUIRED, location="/secure", tls="1.2")
VHOST = ApacheSite(ClientAuth.REQUIRED, tls="both")


def _pha_client(pki: LabPaths, offer: bool) -> httpx.Client:
    """httpx over Python's ssl, TLS 1.3, offering post-handshake authentication or not."""
    context = ssl.create_default_context(cafile=str(pki.ca(CA.SERVER_ROOT)))
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    context.load_cert_chain(pki.client_cert(Identity.ADOBE), pki.client_key(Identity.ADOBE))
    context.post_handshake_auth = offer
    return httpx.Client(verify=context, timeout=10)


def test_per_location_on_tls13_the_jdk_gets_apaches_403_and_a_pha_client_gets_in(
    apache: ApacheServers, jdk_client: JdkClient, pki: LabPaths
) -> None:
    running = apache(PER_PATH)
    secure, other = jdk_client.fetch([running.url + "/secure", running.url + "/other"], tls="1.3")
    assert secure.status == 403, secure
    assert "Cannot perform Post-Handshake Authentication" in secure.body, secure
    assert other.status == 200 and other.body.strip() == "ok", other  # not asked there: no certificate
    assert "post-handshake" in running.wait_for_log("ost-handshake", 5).lower()
    for offer, status in ((True, 200), (False, 403)):
        with _pha_client(pki, offer) as client:
            answer = client.get(running.url + "/secure")
        assert answer.status_code == status, (offer, answer.text)
        assert (SUBJECT in answer.text) is offer


@pytest.mark.parametrize("site", [PER_PATH, PER_PATH_12], ids=["tls-both", "tls12-only"])
def test_per_location_on_tls12_apache_renegotiates_and_the_jdk_answers(
    site: ApacheSite, apache: ApacheServers, jdk_client: JdkClient
) -> None:
    running = apache(site)
    with_cert, without = jdk_client.fetch_each(
        [JdkCall(running.url + "/secure", "1.2", method="POST"), JdkCall(running.url + "/secure", "1.2", None)]
    )
    assert with_cert.status == 200 and SUBJECT in with_cert.body, with_cert
    assert without.status is None and without.error, without  # the renegotiation's handshake fails
    line = f'"POST /secure HTTP/1.1" 200 TLSv1.2 {SUBJECT}'
    assert line in running.wait_for_access(line)


def test_at_the_virtual_host_the_jdk_gets_in_with_its_certificate_and_is_rejected_without(
    apache: ApacheServers, jdk_client: JdkClient
) -> None:
    running = apache(VHOST)
    calls = [
        JdkCall(running.url + path, tls, who)
        for tls in ("1.2", "1.3")
        for path, who in (("/secure", ADOBE), ("/", None))
    ]
    answers = jdk_client.fetch_each(calls)
    for tls, (with_cert, without) in zip(("1.2", "1.3"), (answers[:2], answers[2:]), strict=True):
        assert with_cert.status == 200 and SUBJECT in with_cert.body, (tls, with_cert)
        assert without.status is None and "SSL" in (without.error or ""), (tls, without)
