"""Test certificates made with `cryptography`, shaped like the task's openssl ones (RSA 2048,
CN-only leaves, a root with the subject `O=example Inc., CN=example.com`)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import cache
from pathlib import Path

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


def ca(label: str = "root1", kind: str = "rsa") -> tuple[Pair, object]:
    """The root named `label` (one per label and key kind for the whole test run)."""
    return _ca(label, kind)


@cache
def _ca(label: str, kind: str) -> tuple[Pair, object]:
    key = _key(kind)
    name = _name("example.com", "example Inc.")
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1000 + sum(label.encode()))
            .not_valid_before(EPOCH).not_valid_after(EPOCH + dt.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                           critical=False)
            .sign(key, hashes.SHA256()))
    return Pair(cert.public_bytes(serialization.Encoding.PEM), _pem_key(key)), key


def leaf(cn: str, serial: int = 1, root: str = "root1", kind: str = "rsa",
         org: str = "organization", sans: tuple[str, ...] = (),
         valid_days: tuple[int, int] | None = None,
         window: tuple[dt.datetime, dt.datetime] | None = None) -> Pair:
    """A leaf signed by `root`. `sans` adds DNS (or, with a scheme, URI) names; `valid_days`
    is the validity window in days relative to today (negative: in the past), `window` one in
    instants; without either the certificate is valid for ten years from 2026-01-01."""
    start, end = window or (EPOCH, EPOCH + dt.timedelta(days=3650))
    if valid_days is not None:
        today = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        start, end = (today + dt.timedelta(days=d) for d in valid_days)
    return _leaf(cn, serial, root, kind, org, sans, start, end)


@cache
def _leaf(cn: str, serial: int, root: str, kind: str, org: str, sans: tuple[str, ...],
          start: dt.datetime, end: dt.datetime) -> Pair:
    ca_pair, ca_key = ca(root, kind)
    issuer = x509.load_pem_x509_certificate(ca_pair.cert).subject
    key = _key(kind)
    builder = (x509.CertificateBuilder().subject_name(_name(cn, org)).issuer_name(issuer)
               .public_key(key.public_key()).serial_number(serial)
               .not_valid_before(start).not_valid_after(end))
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName([
            x509.UniformResourceIdentifier(n) if "://" in n else x509.DNSName(n) for n in sans]),
            critical=False)
    cert = (builder
            # Roots share one subject (as in the task); the key identifier tells them apart.
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    return Pair(cert.public_bytes(serialization.Encoding.PEM), _pem_key(key))


def write(pair: Pair, directory: Path, stem: str) -> tuple[Path, Path]:
    cert, key = directory / f"{stem}.crt", directory / f"{stem}.key"
    cert.write_bytes(pair.cert)
    key.write_bytes(pair.key)
    return cert, key


def crl(root: str, revoked_serials: tuple[int, ...]) -> bytes:
    """A CRL signed by `root` revoking the given serials."""
    ca_pair, ca_key = ca(root)
    issuer = x509.load_pem_x509_certificate(ca_pair.cert).subject
    builder = (x509.CertificateRevocationListBuilder().issuer_name(issuer)
               .last_update(EPOCH).next_update(EPOCH + dt.timedelta(days=3650)))
    for serial in revoked_serials:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(EPOCH).build())
    return builder.sign(ca_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


def ocsp_staple(pair: Pair, root: str = "root1", valid_hours: tuple[float, float] = (-1, 24)
                ) -> bytes:
    """A DER OCSP response from `root` saying `pair`'s certificate is good, valid from and to
    the given hours relative to now (negative: in the past)."""
    from cryptography.x509 import ocsp

    ca_pair, ca_key = ca(root)
    issuer = x509.load_pem_x509_certificate(ca_pair.cert)
    cert = x509.load_pem_x509_certificate(pair.cert)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    start, end = (now + dt.timedelta(hours=h) for h in valid_hours)
    response = (ocsp.OCSPResponseBuilder()
                .add_response(cert=cert, issuer=issuer, algorithm=hashes.SHA1(),
                              cert_status=ocsp.OCSPCertStatus.GOOD, this_update=start,
                              next_update=end, revocation_time=None, revocation_reason=None)
                .responder_id(ocsp.OCSPResponderEncoding.HASH, issuer)
                .sign(ca_key, hashes.SHA256()))  # type: ignore[arg-type]
    return response.public_bytes(serialization.Encoding.DER)
