"""Every xDS resource name bastion emits is made here, following Istio's conventions so that
people used to `istioctl proxy-config` recognise them."""

from __future__ import annotations

from bastion.ir.model import BackendRef, Listener, ServerKey

SDS_PREFIX = "kubernetes://"
# The cluster a route with no backend names; Envoy answers 503 for it, as Istio's gateway does.
BLACKHOLE_CLUSTER = "blackhole"
# The virtual host answering 421 for the hosts of the other servers of a port.
MISDIRECTED_VHOST = "misdirected"


def listener(l: Listener) -> str:  # noqa: E741
    return f"{l.bind_address}_{l.bind_port}"


def route_table(key: ServerKey) -> str:
    if key.protocol == "http":
        return f"http.{key.port}"
    return f"{key.protocol}.{key.port}.{key.port_name}.{key.gateway}.{key.namespace}"


def cluster(ref: BackendRef) -> str:
    return f"outbound|{ref.port}|{ref.subset}|{ref.host}"


def secret(credential: str) -> str:
    """SDS resource name of a credential (`kubernetes://httpbin-credential`, and for CAs
    `kubernetes://httpbin-credential-cacert`); file-based ones keep their own names, as Istio's
    (`file-cert:CERT~KEY`, `file-root:CA`), and so do bastion's own (`bastion:...`)."""
    if credential.startswith(("file-", "bastion:")):
        return credential
    return SDS_PREFIX + credential


def virtual_host(host: str, port: int) -> str:
    return f"{host}:{port}"


def stat_prefix(key: ServerKey, name: str) -> str:
    if name:
        return name
    return route_table(key).replace(".", "_").replace("*", "wildcard")
