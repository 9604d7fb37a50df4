"""Making certificates: keys, CA and leaf certificates, CRLs. `bastion certs` and the
certificate issuers (selfSigned, ca) use it; the instant and validity are the caller's, so
everything here is a pure function of its arguments and the key generator."""

from __future__ import annotations

import datetime as dt
import ipaddress
import secrets
from collections.abc import Iterable
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from bastion.private import PrivateBytes

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
CURVES: dict[int, ec.EllipticCurve] = {256: ec.SECP256R1(), 384: ec.SECP384R1(),
                                       521: ec.SECP521R1()}
# cert-manager's usage names -> (key usage flag, or extended key usage)
KEY_USAGES = {"digital signature": "digital_signature", "content commitment":
              "content_commitment", "key encipherment": "key_encipherment", "data encipherment":
              "data_encipherment", "key agreement": "key_agreement", "cert sign":
              "key_cert_sign", "crl sign": "crl_sign"}
EXTENDED_USAGES = {"server auth": ExtendedKeyUsageOID.SERVER_AUTH,
                   "client auth": ExtendedKeyUsageOID.CLIENT_AUTH,
                   "code signing": ExtendedKeyUsageOID.CODE_SIGNING,
                   "email protection": ExtendedKeyUsageOID.EMAIL_PROTECTION,
                   "timestamping": ExtendedKeyUsageOID.TIME_STAMPING,
                   "ocsp signing": ExtendedKeyUsageOID.OCSP_SIGNING}
DEFAULT_USAGES = ("digital signature", "key encipherment")  # cert-manager's default


def new_key(algorithm: str = "ECDSA", size: int | None = None) -> PrivateKey:
    """ECDSA P-256 by default; RSA 2048 unless a size is given; Ed25519."""
    algorithm = algorithm.upper()
    if algorithm == "RSA":
        return rsa.generate_private_key(public_exponent=65537, key_size=size or 2048)
    if algorithm == "ED25519":
        return ed25519.Ed25519PrivateKey.generate()
    if algorithm == "ECDSA":
        return ec.generate_private_key(CURVES[size or 256])
    raise ValueError(f"unknown key algorithm {algorithm!r}")


def key_pem(key: PrivateKey, encoding: str = "PKCS1") -> PrivateBytes:
    """PKCS#1 (SEC 1 for ECDSA: `BEGIN RSA/EC PRIVATE KEY`, cert-manager's default) or PKCS#8.
    Ed25519 keys have only PKCS#8."""
    legacy = encoding.upper() == "PKCS1" and not isinstance(key, ed25519.Ed25519PrivateKey)
    form = (serialization.PrivateFormat.TraditionalOpenSSL if legacy
            else serialization.PrivateFormat.PKCS8)
    return PrivateBytes(key.private_bytes(serialization.Encoding.PEM, form,
                                          serialization.NoEncryption()))


def load_key(pem: bytes) -> PrivateKey:
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
                      | ed25519.Ed25519PrivateKey):
        raise ValueError("unsupported private key type")
    return key


def csr_pem(key: PrivateKey, common_name: str) -> bytes:
    """A certificate request for `key`: what is sent to be signed instead of the key."""
    algorithm = None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    request = (x509.CertificateSigningRequestBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
               .sign(key, algorithm))
    return request.public_bytes(serialization.Encoding.PEM)


def cert_pem(*certificates: x509.Certificate) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certificates)


@dataclass(frozen=True)
class Request:
    """What a certificate says: its names, validity, and whether it is a CA."""

    common_name: str = ""
    organization: str = ""
    dns_names: tuple[str, ...] = ()
    ip_addresses: tuple[str, ...] = ()
    not_before: dt.datetime = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    not_after: dt.datetime = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    is_ca: bool = False
    usages: tuple[str, ...] = DEFAULT_USAGES
    path_length: int | None = None
    uris: tuple[str, ...] = ()  # URI SANs: a SPIFFE identity


def _name(request: Request) -> x509.Name:
    parts = []
    if request.organization:
        parts.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, request.organization))
    if request.common_name:
        parts.append(x509.NameAttribute(NameOID.COMMON_NAME, request.common_name))
    return x509.Name(parts)


def sign(request: Request, public_key: object, issuer: tuple[x509.Certificate, PrivateKey]
         | None, signer: PrivateKey | None = None) -> x509.Certificate:
    """A certificate for `public_key`, signed by `issuer` (certificate and key), or self-signed
    by `signer` (the key of `public_key`) when there is no issuer."""
    subject = _name(request)
    issuer_name = issuer[0].subject if issuer else subject
    signing_key = issuer[1] if issuer else signer
    assert signing_key is not None
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer_name)
               .public_key(public_key)  # type: ignore[arg-type]
               .serial_number(secrets.randbits(127) | 1 << 126)
               .not_valid_before(request.not_before).not_valid_after(request.not_after))
    names: list[x509.GeneralName] = [x509.DNSName(n) for n in request.dns_names]
    names += [x509.IPAddress(ipaddress.ip_address(a)) for a in request.ip_addresses]
    names += [x509.UniformResourceIdentifier(u) for u in request.uris]
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names),
                                        critical=not request.common_name)
    builder = builder.add_extension(
        x509.BasicConstraints(ca=request.is_ca,
                              path_length=request.path_length if request.is_ca else None),
        critical=True)
    usages = set(request.usages) | ({"cert sign", "crl sign"} if request.is_ca else set())
    flags = {flag: name in usages for name, flag in KEY_USAGES.items()}
    builder = builder.add_extension(x509.KeyUsage(
        **flags, encipher_only=False, decipher_only=False), critical=True)
    extended = [EXTENDED_USAGES[u] for u in sorted(usages) if u in EXTENDED_USAGES]
    if extended:
        builder = builder.add_extension(x509.ExtendedKeyUsage(extended), critical=False)
    subject_key = x509.SubjectKeyIdentifier.from_public_key(public_key)  # type: ignore[arg-type]
    builder = builder.add_extension(subject_key, critical=False)
    authority = issuer[0].public_key() if issuer else public_key
    builder = builder.add_extension(
        x509.AuthorityKeyIdentifier.from_issuer_public_key(authority),  # type: ignore[arg-type]
        critical=False)
    algorithm = None if isinstance(signing_key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return builder.sign(signing_key, algorithm)


def revocation_list(issuer: tuple[x509.Certificate, PrivateKey], revoked: Iterable[int],
                    now: dt.datetime, next_update: dt.datetime) -> x509.CertificateRevocationList:
    builder = (x509.CertificateRevocationListBuilder().issuer_name(issuer[0].subject)
               .last_update(now).next_update(next_update))
    for serial in sorted(set(revoked)):
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(now).build())
    key = issuer[1]
    algorithm = None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return builder.sign(key, algorithm)
