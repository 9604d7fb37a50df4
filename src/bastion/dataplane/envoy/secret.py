"""IR credentials to SDS Secrets: the only place key bytes leave `PrivateBytes`."""

from __future__ import annotations

from envoy.config.core.v3 import base_pb2
from envoy.extensions.transport_sockets.tls.v3 import common_pb2, secret_pb2

from bastion.dataplane.envoy import naming
from bastion.ir.model import CaCredential, TicketKeys, TlsCredential


def staple_fresh(credential: TlsCredential, now: str) -> bool:
    """Whether the credential has a staple still valid at `now` (ISO 8601, UTC): Envoy refuses
    a certificate whose staple has expired, and a client must not be given one."""
    return credential.ocsp_staple is not None and (
        credential.ocsp_next_update is None or credential.ocsp_next_update > now)


def build_tls_secret(credential: TlsCredential, now: str) -> secret_pb2.Secret:
    certificate = common_pb2.TlsCertificate(
        certificate_chain=base_pb2.DataSource(inline_bytes=credential.certificate_chain),
        private_key=base_pb2.DataSource(inline_bytes=credential.private_key.reveal()),
    )
    if credential.ocsp_staple is not None and staple_fresh(credential, now):
        certificate.ocsp_staple.inline_bytes = credential.ocsp_staple
    return secret_pb2.Secret(name=naming.secret(credential.name), tls_certificate=certificate)


def build_ca_secret(credential: CaCredential) -> secret_pb2.Secret:
    context = common_pb2.CertificateValidationContext(
        trusted_ca=base_pb2.DataSource(inline_bytes=credential.trusted_ca))
    if credential.crl:
        context.crl.inline_bytes = credential.crl
    return secret_pb2.Secret(name=naming.secret(credential.name), validation_context=context)


def build_ticket_keys_secret(keys: TicketKeys) -> secret_pb2.Secret:
    return secret_pb2.Secret(name=naming.secret(keys.name), session_ticket_keys=(
        common_pb2.TlsSessionTicketKeys(keys=[base_pb2.DataSource(inline_bytes=k.reveal())
                                           for k in keys.keys])))
