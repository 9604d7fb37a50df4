"""How a VirtualService names the Gateways it binds to."""

from __future__ import annotations

from bastion.api import istio


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
