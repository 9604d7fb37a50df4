"""The kinds bastion knows by name, so the CLI can resolve `gw`, `vs`, `secrets`, `deployment`.

Kinds outside this table are still stored (as kubectl users expect `apply` of a whole sample file to
work); they are simply not acted on.
"""

from __future__ import annotations

from dataclasses import dataclass

ISTIO_NETWORKING = "networking.istio.io"
ISTIO_VERSIONS = ("v1", "v1beta1", "v1alpha3")
CERT_MANAGER = "cert-manager.io"
ACME = "acme.cert-manager.io"
GATEWAY_API = "gateway.networking.k8s.io"


@dataclass(frozen=True)
class KindInfo:
    kind: str
    group: str
    versions: tuple[str, ...]
    plural: str
    short_names: tuple[str, ...] = ()
    namespaced: bool = True
    acted_on: bool = False

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.versions[0]}" if self.group else self.versions[0]

    @property
    def resource(self) -> str:
        """kubectl's `plural.group` spelling used in messages such as `secret/x created`."""
        return f"{self.kind.lower()}.{self.group}" if self.group else self.kind.lower()


KNOWN_KINDS: tuple[KindInfo, ...] = (
    KindInfo("Gateway", ISTIO_NETWORKING, ISTIO_VERSIONS, "gateways", ("gw",), acted_on=True),
    KindInfo("VirtualService", ISTIO_NETWORKING, ISTIO_VERSIONS, "virtualservices", ("vs",),
             acted_on=True),
    KindInfo("ServiceEntry", ISTIO_NETWORKING, ISTIO_VERSIONS, "serviceentries", ("se",),
             acted_on=True),
    KindInfo("DestinationRule", ISTIO_NETWORKING, ISTIO_VERSIONS, "destinationrules", ("dr",)),
    KindInfo("Secret", "", ("v1",), "secrets", (), acted_on=True),
    KindInfo("Service", "", ("v1",), "services", ("svc",), acted_on=True),
    KindInfo("Endpoints", "", ("v1",), "endpoints", ("ep",), acted_on=True),
    KindInfo("EndpointSlice", "discovery.k8s.io", ("v1",), "endpointslices", (), acted_on=True),
    KindInfo("ConfigMap", "", ("v1",), "configmaps", ("cm",)),
    KindInfo("Namespace", "", ("v1",), "namespaces", ("ns",), namespaced=False),
    KindInfo("Pod", "", ("v1",), "pods", ("po",)),
    KindInfo("ServiceAccount", "", ("v1",), "serviceaccounts", ("sa",)),
    KindInfo("Deployment", "apps", ("v1",), "deployments", ("deploy",)),
    KindInfo("Event", "", ("v1",), "events", ("ev",)),
    KindInfo("Certificate", CERT_MANAGER, ("v1",), "certificates", ("cert", "certs"),
             acted_on=True),
    KindInfo("Issuer", CERT_MANAGER, ("v1",), "issuers", (), acted_on=True),
    KindInfo("ClusterIssuer", CERT_MANAGER, ("v1",), "clusterissuers", (), namespaced=False,
             acted_on=True),
    KindInfo("GatewayClass", GATEWAY_API, ("v1", "v1beta1"), "gatewayclasses", ("gc",),
             namespaced=False),
    KindInfo("Gateway", GATEWAY_API, ("v1", "v1beta1"), "gateways", ("gtw",)),
    KindInfo("HTTPRoute", GATEWAY_API, ("v1", "v1beta1"), "httproutes", ()),
    KindInfo("TLSRoute", GATEWAY_API, ("v1", "v1alpha3", "v1alpha2"), "tlsroutes", ()),
    KindInfo("ReferenceGrant", GATEWAY_API, ("v1", "v1beta1", "v1alpha2"), "referencegrants",
             ("refgrant",)),
    KindInfo("BackendTLSPolicy", GATEWAY_API, ("v1", "v1alpha3"), "backendtlspolicies",
             ("btlspolicy",)),
    KindInfo("Order", ACME, ("v1",), "orders", ()),
    KindInfo("Challenge", ACME, ("v1",), "challenges", (), acted_on=True),
)


def split_api_version(api_version: str) -> tuple[str, str]:
    """`apps/v1` -> (`apps`, `v1`); `v1` -> (``, `v1`)."""
    group, _, version = api_version.rpartition("/")
    return group, version


def info_for(group: str, kind: str) -> KindInfo | None:
    for info in KNOWN_KINDS:
        if info.kind == kind and info.group == group:
            return info
    return None


def resolve_kind_name(name: str) -> KindInfo | None:
    """Resolve what a user typed (`gw`, `gateways`, `Gateway`, `gateway.networking.istio.io`)."""
    word, _, group = name.lower().partition(".")
    for info in KNOWN_KINDS:
        names = {info.kind.lower(), info.plural, *info.short_names}
        if word in names and (not group or group == info.group):
            return info
    return None


def generic_kind_info(group: str, kind: str) -> KindInfo:
    """A description for a kind outside the table: stored and listed, never acted on."""
    plural = kind.lower() + ("es" if kind.lower().endswith("s") else "s")
    return KindInfo(kind, group, ("v1",), plural)


def kind_info(group: str, kind: str) -> KindInfo:
    """The table's description of a kind, or the generic one for a kind outside it."""
    return info_for(group, kind) or generic_kind_info(group, kind)
