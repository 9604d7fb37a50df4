"""The selfSigned and CA issuers: a certificate signed by its own key, or by the CA in the
Issuer's Secret (`tls.crt`, `tls.key`), as cert-manager's do."""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime as dt
from typing import Any

from cryptography import x509

from bastion import pki
from bastion.api.certmanager import Certificate
from bastion.services.certificates.material import duration, names


class IssuanceError(Exception):
    """Why a certificate could not be issued (said in the Certificate's status and events)."""


def request(cert: Certificate, now: dt.datetime) -> pki.Request:
    dns, ips = names(cert)
    subject = cert.spec.subject
    usages = tuple(cert.spec.usages) or pki.DEFAULT_USAGES
    return pki.Request(
        common_name=cert.spec.common_name or "",
        organization=subject.organizations[0] if subject and subject.organizations else "",
        dns_names=tuple(dns), ip_addresses=tuple(ips), not_before=now,
        not_after=now + duration(cert), is_ca=cert.spec.is_ca, usages=usages)


def self_signed(cert: Certificate, key: pki.PrivateKey, now: dt.datetime
                ) -> tuple[bytes, bytes]:
    """(tls.crt, ca.crt): the certificate is its own CA."""
    signed = pki.sign(request(cert, now), key.public_key(), None, key)
    pem = pki.cert_pem(signed)
    return pem, pem


def from_ca(cert: Certificate, key: pki.PrivateKey, ca_secret: dict[str, Any] | None,
            ca_name: str, now: dt.datetime) -> tuple[bytes, bytes]:
    """(tls.crt: the leaf and the CA's chain, ca.crt: the top of the CA's chain)."""
    if ca_secret is None:
        raise IssuanceError(f"the CA Secret {ca_name} does not exist")
    data = ca_secret.get("data") or {}
    try:
        chain = x509.load_pem_x509_certificates(base64.b64decode(data.get("tls.crt", "")))
        ca_key = pki.load_key(base64.b64decode(data.get("tls.key", "")))
    except (ValueError, binascii.Error, TypeError):
        raise IssuanceError(f"the CA Secret {ca_name} has no usable tls.crt and tls.key"
                            ) from None
    try:
        constraints = chain[0].extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        constraints = None
    if constraints is None or not constraints.ca:
        raise IssuanceError(f"the certificate in the CA Secret {ca_name} is not a CA")
    wanted = request(cert, now)
    end = min(wanted.not_after, chain[0].not_valid_after_utc)  # never outlives its CA
    signed = pki.sign(dataclasses.replace(wanted, not_after=end), key.public_key(),
                      (chain[0], ca_key))
    return pki.cert_pem(signed, *chain), pki.cert_pem(chain[-1])
