"""Test certificates made with `cryptography`, shaped like the task's openssl ones (RSA 2048,
CN-only leaves, a root with the subject `O=example Inc., CN=example.com`)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import cache

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

EPOCH = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


@dataclass(frozen=True)
class Pair:
    cert: bytes
    key: bytes


def _name(cn: str, org: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _key(kind: str):  # type: ignore[no-untyped-def]
    if kind == "ec":
        return ec.generate_private_key(ec.SECP256R1())
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _pem_key(key) -> bytes:  # type: ignore[no-untyped-def]
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


@cache
def ca(label: str = "root1", kind: str = "rsa") -> tuple[Pair, object]:
    key = _key(kind)
    name = _name("example.com", "example Inc.")
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1000 + sum(label.encode()))
            .not_valid_before(EPOCH).not_valid_after(EPOCH + dt.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    return Pair(cert.public_bytes(serialization.Encoding.PEM), _pem_key(key)), key


@cache
def leaf(cn: str, serial: int = 1, root: str = "root1", kind: str = "rsa",
         org: str = "organization") -> Pair:
    ca_pair, ca_key = ca(root, kind)
    issuer = x509.load_pem_x509_certificate(ca_pair.cert).subject
    key = _key(kind)
    cert = (x509.CertificateBuilder().subject_name(_name(cn, org)).issuer_name(issuer)
            .public_key(key.public_key()).serial_number(serial)
            .not_valid_before(EPOCH).not_valid_after(EPOCH + dt.timedelta(days=3650))
            .sign(ca_key, hashes.SHA256()))
    return Pair(cert.public_bytes(serialization.Encoding.PEM), _pem_key(key))
