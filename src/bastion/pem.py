"""Reading PEM safely: certificates parsed and summarised, and any PEM described for people
(dumps, goldens, `bastion translate`, `proxy-config`) without ever showing key material."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

from cryptography import x509
from cryptography.utils import CryptographyDeprecationWarning

from bastion.private import REDACTED


@dataclass(frozen=True)
class CertificateSummary:
    """What a person needs to see about a certificate; never key material."""

    subject: str
    serial: str
    not_before: str
    not_after: str
    dns_names: tuple[str, ...] = ()


def load_certificates(pem: bytes) -> list[x509.Certificate]:
    """Parse a PEM chain. Serial 0, which the task's openssl commands produce, is accepted
    without cryptography's deprecation warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        return x509.load_pem_x509_certificates(pem)


def describe_pem(data: bytes) -> str:
    if b"PRIVATE KEY" in data:
        return REDACTED
    if b"X509 CRL" in data:
        return "[crl]"
    if b"CERTIFICATE" in data:
        try:
            certs = load_certificates(data)
        except ValueError:
            return "[unparsable certificate]"
        return "[" + "; ".join(
            f"{c.subject.rfc4514_string()} serial={c.serial_number}" for c in certs) + "]"
    return f"[{len(data)} bytes]"


def summarize(cert: x509.Certificate) -> CertificateSummary:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        dns = tuple(san.get_values_for_type(x509.DNSName))
    except x509.ExtensionNotFound:
        dns = ()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        serial = cert.serial_number
    return CertificateSummary(
        subject=cert.subject.rfc4514_string(),
        serial=format(serial, "x"),
        not_before=cert.not_valid_before_utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
        not_after=cert.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
        dns_names=dns,
    )
