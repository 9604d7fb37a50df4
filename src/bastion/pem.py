"""Reading PEM safely: certificates parsed, and any PEM described for people (dumps, goldens,
`bastion translate`) without ever showing key material."""

from __future__ import annotations

import warnings

from cryptography import x509
from cryptography.utils import CryptographyDeprecationWarning

from bastion.private import REDACTED


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
