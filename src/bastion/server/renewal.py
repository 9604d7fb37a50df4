"""Remote gateways renew their own client certificates, as Istio's agents do with istiod's CA:
over the same mutual-TLS port as xDS, a gateway whose certificate is still valid sends a
certificate request for a new key and receives a certificate for the same identity. The key
never leaves the gateway's host; nothing here can widen an identity, since the new certificate
names exactly what the presented one names.

One unary gRPC method, `/bastion.v1.Certificates/Renew`, whose request and answer are JSON
(`{"csr": PEM, "days": N}` -> `{"certificate": PEM, "ca": PEM}`): no generated code for a
message this small."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import grpc

from bastion.errors import BadRequest
from bastion.identity import GatewayIdentity
from bastion.services import xds_ca

log = logging.getLogger("bastion")
SERVICE = "bastion.v1.Certificates"
METHOD = f"/{SERVICE}/Renew"
DEFAULT_DAYS = 365


def add_to_server(server: grpc.aio.Server, authority: Callable[[], xds_ca.Authority]) -> None:
    async def renew(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        auth = context.auth_context() or {}
        presented = (auth.get("x509_pem_cert") or [b""])[0]
        identity = GatewayIdentity.of_certificate(presented) if presented else None
        if identity is None:
            await context.abort(grpc.StatusCode.PERMISSION_DENIED,
                                "renewal needs a gateway's client certificate")
        assert identity is not None
        try:
            asked: Any = json.loads(request)
            csr, days = asked["csr"].encode(), int(asked.get("days", DEFAULT_DAYS))
            chain = xds_ca.issue_client(authority(), csr, identity.name, identity.namespace,
                                        identity.uri, days)
        except (ValueError, KeyError, TypeError, AttributeError, BadRequest) as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"renewal refused: {exc}")
        log.info("renewed the client certificate of %s for %d days", identity, days)
        return json.dumps({"certificate": chain.decode(),
                           "ca": authority().pem.decode()}).encode()

    handler = grpc.method_handlers_generic_handler(SERVICE, {
        "Renew": grpc.unary_unary_rpc_method_handler(renew)})
    server.add_generic_rpc_handlers((handler,))
