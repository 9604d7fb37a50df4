"""Identities in certificates: a gateway's names its namespace and name, an operator's only a
name; neither is taken for the other, and anything else is no identity."""

from __future__ import annotations

import datetime as dt

from bastion import pki
from bastion.identity import GatewayIdentity, admin_of, admin_uri


def certificate(*uris: str) -> bytes:
    key = pki.new_key()
    start = dt.datetime.now(dt.UTC)
    return pki.cert_pem(pki.sign(pki.Request("x", not_before=start,
                                             not_after=start + dt.timedelta(days=1),
                                             uris=uris), key.public_key(), None, key))


def test_gateway_and_admin_identities() -> None:
    gateway = GatewayIdentity("istio-system", "gw-1")
    assert GatewayIdentity.parse(gateway.uri) == gateway
    assert GatewayIdentity.of_certificate(certificate(gateway.uri)) == gateway
    assert GatewayIdentity.of_certificate(certificate(admin_uri("ops"))) is None
    assert GatewayIdentity.of_certificate(certificate()) is None
    assert GatewayIdentity.of_certificate(b"not a certificate") is None
    assert GatewayIdentity.parse("spiffe://elsewhere/ns/a/gateway/b") is None
    assert GatewayIdentity.parse("spiffe://bastion/ns/a/gateway/b/c") is None

    from cryptography import x509

    def load(pem: bytes) -> x509.Certificate:
        return x509.load_pem_x509_certificate(pem)

    assert admin_of(load(certificate(admin_uri("ops")))) == "ops"
    assert admin_of(load(certificate(gateway.uri))) is None
