"""Reading gateway credentials from Secrets with Istio's key rules, and checking them before
anything reaches Envoy: PEM that parses, a key that matches its certificate, a key Envoy accepts.

Pure: parsing uses `cryptography` on bytes already in memory.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from functools import lru_cache

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509 import ocsp

from bastion.api import core
from bastion.clock import iso
from bastion.diag import ObjectRef
from bastion.errors import CredentialError, CredentialNotFound
from bastion.ir.model import CaCredential, TlsCredential
from bastion.pem import CertificateSummary, load_certificates, summarize
from bastion.private import PrivateBytes

KUBERNETES_PREFIX = "kubernetes://"
GATEWAY_PREFIX = "kubernetes-gateway://"  # Istio's, for Gateway API certificateRefs
CA_SUFFIX = "-cacert"
SUPPORTED_CURVES = (ec.SECP256R1, ec.SECP384R1, ec.SECP521R1)
PEM_CRL = re.compile(rb"-----BEGIN X509 CRL-----.*?-----END X509 CRL-----", re.S)



@dataclass(frozen=True)
class SecretLookup:
    """Secrets of the gateway's namespace, remembering every name asked for: what translation
    read is what a later Secret change can affect."""

    secrets: dict[tuple[str, str], core.Secret]
    namespace: str
    consulted: set[str] = field(default_factory=set)

    def get(self, name: str) -> core.Secret | None:
        self.consulted.add(name)
        return self.secrets.get(self.locate(name))

    def locate(self, name: str) -> tuple[str, str]:
        """(namespace, Secret name) of a credential: `name` in the gateway's namespace, or
        `namespace/name` (a Gateway API certificateRef another namespace granted)."""
        namespace, _, rest = name.rpartition("/")
        return (namespace, rest) if namespace else (self.namespace, name)

    def where(self, name: str) -> str:
        return "/".join(self.locate(name))


def credential_name(value: str, other_namespaces: bool = False) -> str:
    """`kubernetes://foo` and `foo` both name the Secret `foo`; `kubernetes-gateway://ns/foo`
    names one of another namespace, which only a Gateway API listener (granted it) may;
    other schemes are not served."""
    if other_namespaces and value.startswith(GATEWAY_PREFIX):
        return value[len(GATEWAY_PREFIX):]
    if value.startswith(KUBERNETES_PREFIX):
        value = value[len(KUBERNETES_PREFIX):]
    elif "://" in value:
        scheme = value.split("://", 1)[0]
        raise CredentialError(f"credential scheme {scheme}:// is not supported; use a Secret name")
    if "/" in value:
        raise CredentialError(f"{value!r}: a credential names a Secret of the gateway's "
                              "namespace (no '/')")
    return value


def _refuse_reserved(secret: core.Secret) -> None:
    name = secret.metadata.name
    if name.startswith(("istio", "prometheus")):
        raise CredentialError(
            f"secret {secret.metadata.namespace}/{name}: names starting with 'istio' or "
            "'prometheus' are not used by gateways")
    if "token" in secret.entries():
        raise CredentialError(
            f"secret {secret.metadata.namespace}/{name}: carries a 'token' key, so it is not "
            "used by gateways")


def check_pair(chain: bytes, key: PrivateBytes) -> CertificateSummary:
    """Parse and match a chain and key. Not cached here (no cache may be keyed by key bytes):
    the build checks each Secret object once and keeps the result while the object lives."""
    try:
        certs = load_certificates(chain)
    except ValueError:
        raise CredentialError("certificate is not valid PEM") from None
    try:
        # cryptography's RSA consistency check costs ~40 ms a key (400 s at 10,000 hosts); the
        # signature probe below proves the key works for a fraction of that.
        private_key = serialization.load_pem_private_key(
            key.reveal(), password=None, unsafe_skip_rsa_key_validation=True)
    except TypeError:
        raise CredentialError("private key is encrypted; a gateway needs it unencrypted") from None
    except (ValueError, Exception):
        raise CredentialError("private key is not valid PEM") from None
    if isinstance(private_key, rsa.RSAPrivateKey):
        if private_key.key_size < 2048:
            raise CredentialError(f"RSA key of {private_key.key_size} bits; at least 2048 needed")
    elif isinstance(private_key, ec.EllipticCurvePrivateKey):
        if not isinstance(private_key.curve, SUPPORTED_CURVES):
            raise CredentialError(f"ECDSA curve {private_key.curve.name} is not supported")
    else:
        raise CredentialError(f"key type {type(private_key).__name__} is not supported")
    leaf_public = certs[0].public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    key_public = private_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    if leaf_public != key_public:
        raise CredentialError("private key does not match the certificate")
    _probe(private_key)
    return summarize(certs[0])


PROBE = b"bastion key probe"


def _probe(private_key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> None:
    """Sign with the private key and verify with its public key (which `check_pair` has found
    equal to the certificate's): a key whose private part is corrupt cannot pass, even when its
    public part matches."""
    try:
        if isinstance(private_key, rsa.RSAPrivateKey):
            signature = private_key.sign(PROBE, padding.PKCS1v15(), hashes.SHA256())
            private_key.public_key().verify(signature, PROBE, padding.PKCS1v15(),
                                            hashes.SHA256())
        else:
            signature = private_key.sign(PROBE, ec.ECDSA(hashes.SHA256()))
            private_key.public_key().verify(signature, PROBE, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError):
        raise CredentialError("private key is corrupt: it cannot sign for the certificate") from None


@lru_cache(maxsize=4096)
def _check_ca(bundle: bytes, crl: bytes | None) -> tuple[CertificateSummary, ...]:
    try:
        certs = load_certificates(bundle)
    except ValueError:
        raise CredentialError("CA certificate is not valid PEM") from None
    if crl is not None:
        blocks = PEM_CRL.findall(crl)
        if not blocks:
            raise CredentialError("CRL is not valid PEM")
        for block in blocks:
            try:
                x509.load_pem_x509_crl(block)
            except ValueError:
                raise CredentialError("CRL is not valid PEM") from None
    return tuple(summarize(c) for c in certs)


def _pick_pair(secret: core.Secret) -> tuple[bytes, PrivateBytes, str]:
    for cert_key, key_key in (("cert", "key"), ("tls.crt", "tls.key")):
        chain, key = secret.value(cert_key), secret.private_key(key_key)
        if chain and key:
            return chain, key, cert_key
    ref = f"{secret.metadata.namespace}/{secret.metadata.name}"
    entries = secret.entries()
    for cert_key, key_key in (("cert", "key"), ("tls.crt", "tls.key")):
        if cert_key in entries and key_key in entries:
            raise CredentialError(f"secret {ref}: keys {cert_key!r} and {key_key!r} are empty")
    found = ", ".join(sorted(entries)) or "none"
    raise CredentialError(
        f"secret {ref}: needs keys 'tls.crt' and 'tls.key' (or 'cert' and 'key'); found: {found}")


def tls_credential(lookup: SecretLookup, name: str) -> TlsCredential:
    """The server certificate and key of credential `name`, checked."""
    if name.endswith(CA_SUFFIX):
        raise CredentialError(f"{name!r} ends in {CA_SUFFIX!r}, so it can only hold a CA")
    secret = lookup.get(name)
    if secret is None:
        raise CredentialNotFound(f"secret {lookup.where(name)} not found")
    _refuse_reserved(secret)
    chain, key, used = _pick_pair(secret)
    try:
        summary = check_pair(chain, key)
    except CredentialError as exc:
        raise CredentialError(f"secret {lookup.where(name)}: {exc}") from None
    staple = secret.value("tls.ocsp-staple") if used == "tls.crt" else None
    return _with_staple(TlsCredential(
        name=name,
        certificate_chain=chain,
        private_key=key,
        source=ObjectRef("Secret", *lookup.locate(name)),
        summary=summary,
    ), staple or None)


def _with_staple(credential: TlsCredential, staple: bytes | None) -> TlsCredential:
    """The credential with its OCSP staple, if the staple is a successful DER response about
    this very certificate (Envoy refuses the whole certificate otherwise); else with the reason
    it is not kept."""
    if staple is None:
        return credential
    try:
        response = ocsp.load_der_ocsp_response(staple)
    except ValueError:
        return replace(credential, ocsp_problem="not a DER-encoded OCSP response")
    if response.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
        return replace(credential, ocsp_problem=f"OCSP response status is "
                                                f"{response.response_status.name}")
    serial = format(response.serial_number, "x")
    if credential.summary is not None and serial != credential.summary.serial:
        return replace(credential, ocsp_problem=f"OCSP response is for serial {serial}, not "
                                                f"the certificate's {credential.summary.serial}")
    if response.certificate_status != ocsp.OCSPCertStatus.GOOD:
        return replace(credential, ocsp_problem=f"OCSP response says the certificate is "
                                                f"{response.certificate_status.name}")
    next_update = response.next_update_utc
    return replace(credential, ocsp_staple=staple, ocsp_next_update=(
        iso(next_update) if next_update is not None else None))


def ca_credential(lookup: SecretLookup, name: str) -> CaCredential:
    """The client-verification CA of credential `name` (resource `name-cacert`), in Istio's order:
    a Secret named `name-cacert`, then key `cacert` (+`crl`), then `ca.crt` (+`ca.crl`)."""
    ca_name = name + CA_SUFFIX
    candidates = [s for s in (lookup.get(ca_name), lookup.get(name)) if s is not None]
    if not candidates:
        raise CredentialNotFound(f"secret {lookup.where(name)} not found")
    for secret in candidates:
        values = secret.values()
        _refuse_reserved(secret)
        for ca_key, crl_key in (("cacert", "crl"), ("ca.crt", "ca.crl")):
            if values.get(ca_key):
                crl = values.get(crl_key) or None
                where = f"secret {secret.metadata.namespace}/{secret.metadata.name}"
                try:
                    summaries = _check_ca(values[ca_key], crl)
                except CredentialError as exc:
                    raise CredentialError(f"{where}: {exc}") from None
                return CaCredential(
                    name=ca_name,
                    trusted_ca=values[ca_key],
                    crl=crl,
                    source=ObjectRef("Secret", secret.metadata.namespace or "",
                                     secret.metadata.name),
                    summaries=summaries,
                )
    raise CredentialError(
        f"no CA for mutual TLS: neither secret {lookup.where(ca_name)} nor "
        f"{lookup.where(name)} has key 'cacert' or 'ca.crt'")


def file_tls_credential(name: str, certificate_path: str, chain: bytes, key: PrivateBytes,
                        staple: bytes | None) -> TlsCredential:
    """A server certificate and key read from files, checked as a Secret's are."""
    try:
        summary = check_pair(chain, key)
    except CredentialError as exc:
        raise CredentialError(f"file {certificate_path}: {exc}") from None
    return _with_staple(TlsCredential(name=name, certificate_chain=chain, private_key=key,
                                      source=ObjectRef("File", "", certificate_path),
                                      summary=summary), staple or None)


def file_ca_credential(name: str, bundle_path: str, bundle: bytes, crl: bytes | None
                       ) -> CaCredential:
    try:
        summaries = _check_ca(bundle, crl)
    except CredentialError as exc:
        raise CredentialError(f"file {bundle_path}: {exc}") from None
    return CaCredential(name=name, trusted_ca=bundle, crl=crl,
                        source=ObjectRef("File", "", bundle_path), summaries=summaries)


def with_crl(ca: CaCredential, name: str, crl: bytes) -> CaCredential:
    """A Secret's CA with a CRL file (`caCrl`) added to the CRLs it has."""
    _check_ca(ca.trusted_ca, crl)
    combined = (ca.crl or b"") + (b"\n" if ca.crl else b"") + crl
    return CaCredential(name=name, trusted_ca=ca.trusted_ca, crl=combined, source=ca.source,
                        summaries=ca.summaries)
