"""The Secret a Certificate is issued into: when it is due (cert-manager's renewal rules),
whether it holds what is asked for, and which key the next issuance uses."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from bastion import pki
from bastion.api.admission import Admitted, admit
from bastion.api.certmanager import Certificate
from bastion.services.certificates import material

NOW = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
ISSUER = ("ca", "ClusterIssuer", "cert-manager.io")


def certificate(**spec: Any) -> Certificate:
    verdict = admit({"apiVersion": "cert-manager.io/v1", "kind": "Certificate",
                     "metadata": {"name": "web", "namespace": "istio-system"},
                     "spec": {"secretName": "web", "dnsNames": ["web.example.com"],
                              "issuerRef": {"name": "ca", "kind": "ClusterIssuer"}, **spec}})
    assert isinstance(verdict, Admitted), verdict
    assert isinstance(verdict.model, Certificate)
    return verdict.model


def held(cert: Certificate, days: int = 90, key: pki.PrivateKey | None = None,
         names: tuple[str, ...] = ("web.example.com",)) -> material.Held:
    key = key or pki.new_key()
    leaf = pki.sign(pki.Request(dns_names=names, not_before=NOW,
                                not_after=NOW + dt.timedelta(days=days)), key.public_key(),
                    None, key)
    body = material.secret_body(cert, ISSUER, pki.cert_pem(leaf), pki.key_pem(key), None)
    found = material.read(body)
    assert found is not None
    return found


@pytest.mark.parametrize(("spec", "days", "renew_in"), [
    ({}, 90, dt.timedelta(days=60)),  # two thirds through
    ({"renewBefore": "360h"}, 90, dt.timedelta(days=75)),
    ({"renewBeforePercentage": 10}, 90, dt.timedelta(days=81)),
    # Not shorter than the validity the issuer gave (an ACME server decides it): two thirds.
    ({"duration": "4000h", "renewBefore": "2400h"}, 90, dt.timedelta(days=60)),
])
def test_renewal_time(spec: dict[str, Any], days: int, renew_in: dt.timedelta) -> None:
    cert = certificate(**spec)
    assert material.renewal_time(cert, held(cert, days).leaf) == NOW + renew_in


def test_what_the_secret_holds_is_checked() -> None:
    cert = certificate()
    assert material.mismatch(cert, held(cert), ISSUER) is None
    assert "names" in (material.mismatch(certificate(dnsNames=["other.example.com"]),
                                         held(cert), ISSUER) or "")
    assert "not issued by" in (material.mismatch(cert, held(cert),
                                                 ("other", "Issuer", "cert-manager.io")) or "")
    assert material.read({"data": {"tls.crt": "bm90IGEgY2VydA=="}}) is None


def test_rotation_policy_never_reuses_a_key_of_the_algorithm_asked() -> None:
    key = pki.new_key("ECDSA")
    kept = certificate(privateKey={"algorithm": "ECDSA", "rotationPolicy": "Never"})
    assert material.private_key(kept, held(kept, key=key)).public_key() == key.public_key()
    rotated = certificate(privateKey={"algorithm": "ECDSA", "rotationPolicy": "Always"})
    assert material.private_key(rotated, held(rotated, key=key)).public_key() != \
        key.public_key()
    other = certificate(privateKey={"algorithm": "RSA", "rotationPolicy": "Never"})
    assert isinstance(material.private_key(other, held(other, key=key)),
                      type(pki.new_key("RSA")))
