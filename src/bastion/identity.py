"""Who a remote gateway is, as its client certificate says: a SPIFFE ID naming its namespace and
its name (Istio's workload identities name a namespace and a service account the same way);
and who an operator of the remote API is (`spiffe://bastion/admin/NAME`).

The control plane issues these certificates from its xDS CA; the ADS server lets a stream
declare only the node name and namespace its certificate names, so a gateway can never ask for
the configuration, or the keys, of a namespace it was not issued for."""

from __future__ import annotations

import re
from dataclasses import dataclass

from cryptography import x509

TRUST_DOMAIN = "bastion"
# The name every control plane's serving certificate carries, and remote gateways verify: one
# fixed name, like istiod's, since control planes move between hosts.
CONTROL_PLANE_NAME = "xds.bastion-system.svc"
_ID = re.compile(rf"spiffe://{TRUST_DOMAIN}/ns/([a-z0-9][-a-z0-9]*)/gateway/([^/]+)")
_ADMIN = re.compile(rf"spiffe://{TRUST_DOMAIN}/admin/([a-z0-9][-a-z0-9.]*)")


def admin_uri(name: str) -> str:
    """The identity of an operator's client certificate for the remote API."""
    return f"spiffe://{TRUST_DOMAIN}/admin/{name}"


def certificate_uris(certificate: x509.Certificate) -> list[str]:
    try:
        sans = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return []
    return list(sans.value.get_values_for_type(x509.UniformResourceIdentifier))


def admin_of(certificate: x509.Certificate) -> str | None:
    """The operator a certificate names; None for any other certificate (a gateway's)."""
    for uri in certificate_uris(certificate):
        match = _ADMIN.fullmatch(uri)
        if match:
            return match.group(1)
    return None


@dataclass(frozen=True)
class GatewayIdentity:
    namespace: str
    name: str

    @property
    def uri(self) -> str:
        return f"spiffe://{TRUST_DOMAIN}/ns/{self.namespace}/gateway/{self.name}"

    def __str__(self) -> str:
        return self.uri

    @classmethod
    def parse(cls, uri: str) -> GatewayIdentity | None:
        match = _ID.fullmatch(uri)
        return cls(match.group(1), match.group(2)) if match else None

    @classmethod
    def of_certificate(cls, pem: bytes) -> GatewayIdentity | None:
        """The identity a certificate's URI SANs name; None if it names none."""
        try:
            certificate = x509.load_pem_x509_certificate(pem)
        except ValueError:
            return None
        for uri in certificate_uris(certificate):
            identity = cls.parse(uri)
            if identity is not None:
                return identity
        return None
