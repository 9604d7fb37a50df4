"""How a VirtualService names the Gateways it binds to."""

from __future__ import annotations

from bastion.api import istio
from bastion.translate.istio import hosts


def gateway_refs(vs: istio.VirtualService, gateways: list[str]) -> set[tuple[str, str]]:
    """The (namespace, name) of each Gateway a `gateways` list names. Short names are in the
    VirtualService's namespace; `ns/name`, `./name` and the legacy FQDN form are also accepted."""
    vs_namespace = vs.metadata.namespace or "default"
    out = set()
    for entry in gateways:
        if "/" in entry:
            namespace, _, name = entry.partition("/")
            namespace = vs_namespace if namespace == "." else namespace
        elif "." in entry:
            name, _, rest = entry.partition(".")
            namespace = rest.split(".", 1)[0]
        else:
            namespace, name = vs_namespace, entry
        out.add((namespace, name))
    return out


def bindable_hosts(gateway: istio.Gateway, server_hosts: list[str], vs: istio.VirtualService
                   ) -> list[str]:
    """The server's host names a VirtualService may bind: `ns/host` admits VirtualServices
    of namespace `ns` only (`*`: any, `.`: the Gateway's own)."""
    vs_ns = vs.metadata.namespace or "default"
    gw_ns = gateway.metadata.namespace
    return [name for ns, name in map(hosts.split_namespace, server_hosts)
            if ns in ("*", vs_ns) or (ns == "." and vs_ns == gw_ns)]
