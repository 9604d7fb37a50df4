"""The Secret a Certificate is issued into, in cert-manager's layout (`tls.crt`: the leaf and
its chain, `tls.key`, `ca.crt`; cert-manager's annotations), read back: whether what it holds is
what the Certificate asks for, and when to renew it."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import ipaddress
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from bastion import pki
from bastion.api.certmanager import Certificate
from bastion.api.validation import go_duration_s
from bastion.api.validation.certificate import DEFAULT_DURATION_S
from bastion.private import PrivateBytes

ANNOTATIONS = "cert-manager.io/"


@dataclass(frozen=True)
class Held:
    """What a Certificate's Secret holds."""

    chain: tuple[x509.Certificate, ...]
    key: PrivateBytes
    annotations: dict[str, str]

    @property
    def leaf(self) -> x509.Certificate:
        return self.chain[0]


def read(secret: dict[str, Any] | None) -> Held | None:
    """The certificate and key of a Secret, or None when it has none that parse."""
    if secret is None:
        return None
    data = secret.get("data") or {}
    try:
        chain = x509.load_pem_x509_certificates(base64.b64decode(data.get("tls.crt", "")))
        key = PrivateBytes(base64.b64decode(data.get("tls.key", "")))
        pki.load_key(key.reveal())
    except (ValueError, binascii.Error, TypeError):
        return None
    annotations = (secret.get("metadata") or {}).get("annotations") or {}
    return Held(tuple(chain), key, dict(annotations))


def names(cert: Certificate) -> tuple[list[str], list[str]]:
    """(DNS names, IP addresses) the certificate must carry; a commonName not among the DNS
    names is added to them, as cert-manager does."""
    dns = list(cert.spec.dns_names)
    if cert.spec.common_name and cert.spec.common_name not in dns and not _is_ip(
            cert.spec.common_name):
        dns.insert(0, cert.spec.common_name)
    return dns, list(cert.spec.ip_addresses)


def mismatch(cert: Certificate, held: Held, issuer: tuple[str, str, str]) -> str | None:
    """Why the Secret's certificate is not the one asked for (None: it is)."""
    want_dns, want_ips = names(cert)
    try:
        san = held.leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        dns = sorted(san.get_values_for_type(x509.DNSName))
        ips = sorted(str(a) for a in san.get_values_for_type(x509.IPAddress))
    except x509.ExtensionNotFound:
        dns, ips = [], []
    if dns != sorted(want_dns) or ips != sorted(str(ipaddress.ip_address(a)) for a in want_ips):
        return "the certificate's names are not the Certificate's"
    name, kind = issuer[0], issuer[1]
    if (held.annotations.get(ANNOTATIONS + "issuer-name"),
            held.annotations.get(ANNOTATIONS + "issuer-kind")) != (name, kind):
        return f"the certificate was not issued by {kind} {name!r}"
    if not _same_key(held.leaf, held.key):
        return "the private key does not match the certificate"
    return None


def renewal_time(cert: Certificate, leaf: x509.Certificate) -> dt.datetime:
    """cert-manager's: `renewBefore` before the end (or `renewBeforePercentage` of the actual
    validity), and two thirds through the validity when neither is set or renewBefore is not
    shorter than the validity."""
    start, end = leaf.not_valid_before_utc, leaf.not_valid_after_utc
    lifetime = end - start
    before = None
    if cert.spec.renew_before is not None:
        seconds = go_duration_s(cert.spec.renew_before)
        if seconds is not None and dt.timedelta(seconds=seconds) < lifetime:
            before = dt.timedelta(seconds=seconds)
    elif cert.spec.renew_before_percentage is not None:
        before = lifetime * cert.spec.renew_before_percentage / 100
    if before is None:
        before = lifetime / 3
    return (end - before).replace(microsecond=0)


def duration(cert: Certificate) -> dt.timedelta:
    seconds = go_duration_s(cert.spec.duration) if cert.spec.duration else None
    return dt.timedelta(seconds=seconds or DEFAULT_DURATION_S)


def private_key(cert: Certificate, held: Held | None) -> pki.PrivateKey:
    """A new key, or with `rotationPolicy: Never` the one the Secret holds (if it is of the
    algorithm asked for)."""
    settings = cert.spec.private_key
    algorithm = settings.algorithm if settings else "RSA"
    size = settings.size if settings else None
    if settings is not None and settings.rotation_policy == "Never" and held is not None:
        key = pki.load_key(held.key.reveal())
        wanted = {"RSA": rsa.RSAPrivateKey, "ECDSA": ec.EllipticCurvePrivateKey,
                  "Ed25519": ed25519.Ed25519PrivateKey}[algorithm]
        if isinstance(key, wanted):
            return key
    return pki.new_key(algorithm, size)


def secret_body(cert: Certificate, issuer: tuple[str, str, str], chain_pem: bytes,
                key: PrivateBytes, ca_pem: bytes | None) -> dict[str, Any]:
    meta = cert.metadata
    dns, ips = names(cert)
    name, kind, group = issuer
    template = cert.spec.secret_template
    annotations = {
        **(template.annotations if template else {}),
        ANNOTATIONS + "certificate-name": meta.name, ANNOTATIONS + "issuer-name": name,
        ANNOTATIONS + "issuer-kind": kind, ANNOTATIONS + "issuer-group": group,
        ANNOTATIONS + "common-name": cert.spec.common_name or "",
        ANNOTATIONS + "alt-names": ",".join(dns), ANNOTATIONS + "ip-sans": ",".join(ips),
        ANNOTATIONS + "uri-sans": "",
    }
    labels = {**(template.labels if template else {}), "controller.cert-manager.io/fao": "true"}
    data = {"tls.crt": chain_pem, "tls.key": key.reveal()}
    if ca_pem:
        data["ca.crt"] = ca_pem
    encoding = cert.spec.private_key.encoding if cert.spec.private_key else "PKCS1"
    if encoding == "PKCS8":
        data["tls.key"] = pki.key_pem(pki.load_key(key.reveal()), "PKCS8").reveal()
    return {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
            "metadata": {"name": cert.spec.secret_name, "namespace": meta.namespace,
                         "annotations": annotations, "labels": labels},
            "data": {k: base64.b64encode(v).decode() for k, v in data.items()}}


def _same_key(leaf: x509.Certificate, key: PrivateBytes) -> bool:
    try:
        private = pki.load_key(key.reveal())
    except ValueError:
        return False
    return private.public_key() == leaf.public_key()


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True
