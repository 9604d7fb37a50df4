"""The xDS CA: the one certificate authority every control plane of a store shares, kept in the
store like istiod's self-signed root (`istio-ca-secret`), and created by the first control plane
that needs it. It signs the control planes' serving certificates (all with one name, so a
gateway can fail over between them) and the gateways' client certificates, whose identity says
which namespace's configuration they may receive.

It lives in the namespace `bastion-system`, where no gateway reads credentials."""

from __future__ import annotations

import base64
import datetime as dt
import logging
from dataclasses import dataclass

from cryptography import x509

from bastion import pki
from bastion.api.validation.names import is_ip
from bastion.errors import BadRequest, InputError
from bastion.identity import CONTROL_PLANE_NAME
from bastion.private import PrivateBytes
from bastion.services.certificates.material import read
from bastion.store import ObjectStore
from bastion.store.keys import StoreKey

log = logging.getLogger("bastion")
NAMESPACE = "bastion-system"
CA_KEY = StoreKey("", "Secret", NAMESPACE, "bastion-xds-ca")
CA_DAYS = 3650  # Istio's self-signed root lives ten years too
SERVING_DAYS = 90  # made again at every start
MAX_CLIENT_DAYS = 3650


@dataclass(frozen=True)
class Authority:
    certificate: x509.Certificate
    key: pki.PrivateKey

    @property
    def pem(self) -> bytes:
        return pki.cert_pem(self.certificate)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def _secret(certificate: x509.Certificate, key: PrivateBytes) -> dict[str, object]:
    data = {"tls.crt": pki.cert_pem(certificate), "tls.key": key.reveal(),
            "ca.crt": pki.cert_pem(certificate)}
    return {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
            "metadata": {"name": CA_KEY.name, "namespace": NAMESPACE},
            "data": {k: base64.b64encode(v).decode() for k, v in data.items()}}


def ensure(store: ObjectStore, plugged: tuple[bytes, PrivateBytes] | None = None) -> Authority:
    """The store's xDS CA, made (or, with `plugged`, the operator's CA stored) if there is
    none; a CA already stored is kept, so every control plane of a store agrees."""
    held = read(stored.body) if (stored := store.get(CA_KEY)) is not None else None
    if held is not None and plugged is not None and (
            x509.load_pem_x509_certificate(plugged[0]) != held.leaf):
        log.warning("--xds-ca: the store already holds another xDS CA (%s), which is kept",
                    CA_KEY.ref)
    if held is None:
        if plugged is not None:
            certificate = x509.load_pem_x509_certificate(plugged[0])
            key_pem = plugged[1]
        else:
            key = pki.new_key("ECDSA")
            start = _now() - dt.timedelta(minutes=5)
            certificate = pki.sign(pki.Request(
                "bastion xDS CA", "bastion", not_before=start,
                not_after=start + dt.timedelta(days=CA_DAYS), is_ca=True, usages=()),
                key.public_key(), None, key)
            key_pem = pki.key_pem(key, "PKCS8")
        # Created only if absent: of control planes starting together, one CA wins.
        store.create(CA_KEY, _secret(certificate, key_pem))
        held = read(store.get(CA_KEY).body)  # type: ignore[union-attr]
        if held is None:
            raise InputError(f"{CA_KEY.ref}: the xDS CA stored cannot be read back")
    return Authority(held.leaf, pki.load_key(held.key.reveal()))


def serving_certificate(ca: Authority, hosts: tuple[str, ...] = ()
                        ) -> tuple[bytes, PrivateBytes]:
    """A control plane's serving chain and key: the shared name, and the hosts it listens on."""
    key = pki.new_key("ECDSA")
    start = _now() - dt.timedelta(minutes=5)
    ips = tuple(h for h in hosts if is_ip(h))
    dns = (CONTROL_PLANE_NAME, *(h for h in hosts if h and not is_ip(h)))
    leaf = pki.sign(pki.Request(CONTROL_PLANE_NAME, "bastion", dns, ips, start,
                                start + dt.timedelta(days=SERVING_DAYS),
                                usages=(*pki.DEFAULT_USAGES, "server auth")),
                    key.public_key(), (ca.certificate, ca.key))
    return pki.cert_pem(leaf), pki.key_pem(key, "PKCS8")


def issue_client(ca: Authority, csr_pem: bytes, name: str, organization: str, uri: str,
                 days: int) -> bytes:
    """A client certificate (a gateway's, an operator's) for the key of `csr_pem` (the key
    never leaves its owner's host): its identity as a SPIFFE URI, for client authentication
    only."""
    if not 1 <= days <= MAX_CLIENT_DAYS:
        raise BadRequest(f"days must be between 1 and {MAX_CLIENT_DAYS}")
    try:
        csr = x509.load_pem_x509_csr(csr_pem)
    except ValueError as exc:
        raise BadRequest(f"the certificate request does not parse: {exc}") from None
    if not csr.is_signature_valid:
        raise BadRequest("the certificate request's signature is not valid")
    start = _now() - dt.timedelta(minutes=5)
    leaf = pki.sign(pki.Request(name, organization, not_before=start,
                                not_after=start + dt.timedelta(days=days),
                                usages=(*pki.DEFAULT_USAGES, "client auth"), uris=(uri,)),
                    csr.public_key(), (ca.certificate, ca.key))
    return pki.cert_pem(leaf)

