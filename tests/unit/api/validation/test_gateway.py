"""Istio's Gateway rules, one case (or more) per rule, each with Istio's verdict: read from
`validateServer`, `validateServerPort`, `validateServerBind` and `validateTLSOptions` in
istio/istio `pkg/config/validation/validation.go`."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.api.validation.verdicts import ACCEPT, REJECT, WARN, check

SIMPLE = {"mode": "SIMPLE", "credentialName": "cred"}


def gateway(name: str = "gw", **server: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"port": {"number": 443, "name": "https", "protocol": "HTTPS"},
                            "hosts": ["a.example.com"], "tls": SIMPLE}
    base.update(server)
    return {"apiVersion": "networking.istio.io/v1", "kind": "Gateway",
            "metadata": {"name": name}, "spec": {"servers": [base]}}


def http(**server: Any) -> dict[str, Any]:
    server.setdefault("tls", None)
    doc = gateway(port={"number": 80, "name": "http", "protocol": "HTTP"}, **server)
    if doc["spec"]["servers"][0]["tls"] is None:
        del doc["spec"]["servers"][0]["tls"]
    return doc


def tls(**settings: Any) -> dict[str, Any]:
    return gateway(tls=settings)


CASES = [
    # name
    ("name-dns-label", gateway("my-gateway"), ACCEPT, ""),
    ("name-with-dot", gateway("my.gateway"), REJECT, "metadata.name: a Gateway's name"),
    # hosts
    ("host-fqdn", gateway(hosts=["foo.bar.com"]), ACCEPT, ""),
    ("host-wildcard", gateway(hosts=["*.bar.com"]), ACCEPT, ""),
    ("host-star", gateway(hosts=["*"]), ACCEPT, ""),
    ("host-namespace", gateway(hosts=["ns1/foo.bar.com"]), ACCEPT, ""),
    ("host-any-namespace", gateway(hosts=["*/foo.bar.com"]), ACCEPT, ""),
    ("host-this-namespace", gateway(hosts=["./foo.bar.com"]), ACCEPT, ""),
    ("host-ip", gateway(hosts=["10.0.0.1"]), ACCEPT, ""),
    ("host-short", gateway(hosts=["foo"]), REJECT, "short host name 'foo'"),
    ("host-middle-wildcard", gateway(hosts=["foo.*.bar.com"]), REJECT, "label '*' is invalid"),
    ("host-partial-wildcard", gateway(hosts=["*bar.com"]), REJECT, "partial wildcard"),
    ("host-bad-namespace", gateway(hosts=["~/foo.bar.com"]), REJECT, "invalid namespace '~'"),
    ("host-empty-namespace", gateway(hosts=["/foo.bar.com"]), REJECT, "cannot be empty"),
    # port
    ("port-out-of-range", gateway(port={"number": 66000, "name": "p", "protocol": "HTTPS"}),
     REJECT, "port.number"),
    ("port-no-name", gateway(port={"number": 443, "protocol": "HTTPS"}), REJECT,
     "port.name: required"),
    ("port-bad-protocol", gateway(port={"number": 443, "name": "p", "protocol": "SPDY"}),
     REJECT, "invalid protocol 'SPDY'"),
    ("port-lower-case-protocol", gateway(port={"number": 443, "name": "p", "protocol": "https"}),
     ACCEPT, ""),
    ("port-target-port", gateway(port={"number": 443, "name": "p", "protocol": "HTTPS",
                                       "targetPort": 8443}), REJECT, "targetPort has no effect"),
    # bind
    ("bind-ip", gateway(bind="127.0.0.1"), ACCEPT, ""),
    ("bind-not-ip", gateway(bind="localhost"), REJECT, "'localhost' is not a valid IP"),
    ("bind-unix", gateway(bind="unix:///run/gw.sock",
                          port={"number": 0, "name": "u", "protocol": "HTTPS"}), ACCEPT, ""),
    ("bind-unix-port", gateway(bind="unix:///run/gw.sock"), REJECT, "must be 0 for a unix"),
    ("bind-unix-relative", gateway(bind="unix://run/gw.sock",
                                   port={"number": 0, "name": "u", "protocol": "HTTPS"}),
     REJECT, "not an absolute path"),
    # protocol and tls
    ("https-without-tls", gateway(tls=None), REJECT, "tls: required for protocol HTTPS"),
    ("tcp-with-tls", gateway(port={"number": 31400, "name": "t", "protocol": "TCP"}), REJECT,
     "not allowed for protocol TCP"),
    ("http-https-redirect", http(tls={"httpsRedirect": True}), ACCEPT, ""),
    ("http-with-credential-passthrough", http(tls={"credentialName": "x"}), WARN,
     "PASSTHROUGH does not use certificates"),
    ("http-with-simple-tls", http(tls=SIMPLE), REJECT, "may only set httpsRedirect"),
    ("https-redirect-on-https", tls(httpsRedirect=True, **SIMPLE), WARN,
     "httpsRedirect should only be used on HTTP servers"),
    ("tls-passthrough", gateway(port={"number": 443, "name": "t", "protocol": "TLS"},
                                tls={"mode": "PASSTHROUGH"}), ACCEPT, ""),
    ("tls-without-mode-is-passthrough", tls(credentialName="cred"), WARN,
     "PASSTHROUGH does not use certificates"),
    ("auto-passthrough-with-cert", tls(mode="AUTO_PASSTHROUGH", credentialName="c"), WARN,
     "AUTO_PASSTHROUGH does not use certificates"),
    # ISTIO_MUTUAL
    ("istio-mutual", tls(mode="ISTIO_MUTUAL"), ACCEPT, ""),
    ("istio-mutual-credential", tls(mode="ISTIO_MUTUAL", credentialName="c"), REJECT,
     "ISTIO_MUTUAL takes no certificates"),
    ("istio-mutual-file", tls(mode="ISTIO_MUTUAL", serverCertificate="/c"), REJECT,
     "tls.serverCertificate: ISTIO_MUTUAL"),
    # certificate sources
    ("two-sources", tls(mode="SIMPLE", credentialName="a", credentialNames=["b"]), REJECT,
     "only one of credentialName, credentialNames"),
    ("credential-and-files", tls(mode="SIMPLE", credentialName="a", serverCertificate="/c",
                                 privateKey="/k"), REJECT, "only one of"),
    ("credential-and-lone-key", tls(mode="SIMPLE", credentialName="a", privateKey="/k"),
     ACCEPT, ""),
    ("credential-and-lone-cert", tls(mode="SIMPLE", credentialName="a",
                                     serverCertificate="/c"), ACCEPT, ""),
    ("credential-names-two", tls(mode="SIMPLE", credentialNames=["rsa", "ecdsa"]), ACCEPT, ""),
    ("simple-no-certificate", tls(mode="SIMPLE"), REJECT, "requires a server certificate"),
    ("simple-files", tls(mode="SIMPLE", serverCertificate="/c", privateKey="/k"), ACCEPT, ""),
    ("simple-file-no-key", tls(mode="SIMPLE", serverCertificate="/c"), REJECT,
     "tls.privateKey: SIMPLE TLS requires a private key"),
    ("mutual-files-no-ca", tls(mode="MUTUAL", serverCertificate="/c", privateKey="/k"), REJECT,
     "MUTUAL TLS requires a client CA bundle"),
    ("mutual-files", tls(mode="MUTUAL", serverCertificate="/c", privateKey="/k",
                         caCertificates="/ca"), ACCEPT, ""),
    ("mutual-credential-no-ca", tls(mode="MUTUAL", credentialName="c"), ACCEPT, ""),
    ("tls-certificates", tls(mode="SIMPLE", tlsCertificates=[
        {"serverCertificate": "/r", "privateKey": "/rk"},
        {"serverCertificate": "/e", "privateKey": "/ek"}]), ACCEPT, ""),
    ("tls-certificates-no-key", tls(mode="SIMPLE", tlsCertificates=[
        {"serverCertificate": "/r"}]), REJECT, "tlsCertificates[0].privateKey"),
    ("tls-certificates-three", tls(mode="SIMPLE", tlsCertificates=[
        {"serverCertificate": f"/{n}", "privateKey": f"/{n}k"} for n in "abc"]), WARN,
     "at most 2 server certificates"),
    # CRL
    ("crl-with-credential", tls(mode="MUTUAL", credentialName="c", caCrl="/crl"), ACCEPT, ""),
    ("crl-simple-files", tls(mode="SIMPLE", serverCertificate="/c", privateKey="/k",
                             caCrl="/crl"), REJECT, "CRL has no use with SIMPLE"),
    ("crl-passthrough-credential", tls(mode="PASSTHROUGH", credentialName="c", caCrl="/crl"),
     REJECT, "the CRL must be in the Secret"),
    # versions and ciphers
    ("min-tls-1.0-no-ciphers", tls(minProtocolVersion="TLSV1_0", **SIMPLE), WARN,
     "TLS versions below 1.2 need cipherSuites"),
    ("min-tls-1.1-with-ciphers", tls(minProtocolVersion="TLSV1_1",
                                     cipherSuites=["ECDHE-RSA-AES128-SHA"], **SIMPLE), ACCEPT, ""),
    ("min-tls-1.3", tls(minProtocolVersion="TLSV1_3", **SIMPLE), ACCEPT, ""),
    ("bad-tls-version", tls(minProtocolVersion="TLSV9", **SIMPLE), REJECT,
     "minProtocolVersion"),
    ("invalid-cipher", tls(cipherSuites=["NOT-A-CIPHER"], **SIMPLE), WARN,
     "ignoring invalid cipher suites: NOT-A-CIPHER"),
    ("duplicate-cipher", tls(cipherSuites=["AES128-SHA", "AES128-SHA"], **SIMPLE), WARN,
     "ignoring duplicate cipher suites: AES128-SHA"),
    ("cipher-operator", tls(cipherSuites=["-AES128-SHA", "ALL"], **SIMPLE), ACCEPT, ""),
    # several servers
    ("duplicate-port-names", {**gateway(), "spec": {"servers": [
        gateway()["spec"]["servers"][0],
        {**gateway()["spec"]["servers"][0], "hosts": ["b.example.com"]}]}}, REJECT,
     "port names in servers must be unique"),
]


@pytest.mark.parametrize(("obj", "expected", "fragment"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_gateway_rule(obj: dict[str, Any], expected: str, fragment: str) -> None:
    check(obj, expected, fragment)


def test_trailing_dot_host_is_accepted() -> None:
    check(gateway(hosts=["example.com."]), ACCEPT, "")
    check(gateway(hosts=["localhost."]), ACCEPT, "")
