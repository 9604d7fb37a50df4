"""IR credentials to SDS Secrets: the only place key bytes leave `PrivateBytes`."""

from __future__ import annotations

from envoy.config.core.v3 import base_pb2
from envoy.extensions.transport_sockets.tls.v3 import common_pb2, secret_pb2

from bastion.dataplane.envoy import naming
from bastion.ir.model import CaCredential, TlsCredential


def build_tls_secret(credential: TlsCredential) -> secret_pb2.Secret:
    certificate = common_pb2.TlsCertificate(
        certificate_chain=base_pb2.DataSource(inline_bytes=credential.certificate_chain),
        private_key=base_pb2.DataSource(inline_bytes=credential.private_key.reveal()),
    )
    if credential.ocsp_staple:
        certificate.ocsp_staple.inline_bytes = credential.ocsp_staple
    return secret_pb2.Secret(name=naming.secret(credential.name), tls_certificate=certificate)


def build_ca_secret(credential: CaCredential) -> secret_pb2.Secret:
    context = common_pb2.CertificateValidationContext(
        trusted_ca=base_pb2.DataSource(inline_bytes=credential.trusted_ca))
    if credential.crl:
        context.crl.inline_bytes = credential.crl
    return secret_pb2.Secret(name=naming.secret(credential.name), validation_context=context)
