"""Models of the Kubernetes core objects bastion reads: Secret, Service, Endpoints, EndpointSlice."""

from __future__ import annotations

import base64
import binascii
import ipaddress

from pydantic import Field, field_validator

from bastion.api.base import ObjectMeta, lenient
from bastion.private import PrivateBytes

TLS_SECRET_TYPE = "kubernetes.io/tls"


@lenient
class CoreObject:
    api_version: str
    kind: str
    metadata: ObjectMeta


# The entries a gateway reads a private key from (Istio's two formats).
# Entries holding key material (a session-ticket key set is one: it decrypts sessions).
PRIVATE_KEY_ENTRIES = frozenset({"tls.key", "key", "ticket.keys"})


@lenient
class Secret(CoreObject):
    """A Secret as admitted. Its values are kept encoded and out of `repr`; a private key is
    only ever decoded into `PrivateBytes` (`private_key`), whose every printable form is
    redacted."""

    type: str = "Opaque"
    data: dict[str, str] = Field(default_factory=dict, repr=False)
    string_data: dict[str, str] = Field(default_factory=dict, repr=False)
    immutable: bool | None = None

    @field_validator("data")
    @classmethod
    def _base64(cls, data: dict[str, str]) -> dict[str, str]:
        for key, value in data.items():
            try:
                base64.b64decode(value or "", validate=True)
            except (binascii.Error, ValueError):
                raise ValueError(f"value of key {key!r} is not valid base64") from None
        return data

    def entries(self) -> set[str]:
        """The names of every value, `data` and `stringData` together."""
        return set(self.data) | set(self.string_data)

    def encoded(self) -> dict[str, str]:
        """Every value base64-encoded, `stringData` winning over `data` as the API server
        merges them; nothing is decoded."""
        out = dict(self.data)
        out.update({k: base64.b64encode(v.encode()).decode() for k, v in self.string_data.items()})
        return out

    def value(self, entry: str) -> bytes | None:
        """A value that is not a private key, decoded."""
        if entry in PRIVATE_KEY_ENTRIES:
            raise KeyError(f"{entry!r} holds a private key; use private_key()")
        if entry in self.string_data:
            return self.string_data[entry].encode()
        if entry in self.data:
            return base64.b64decode(self.data[entry] or "")
        return None

    def values(self) -> dict[str, bytes]:
        """Every value that is not a private key, decoded."""
        return {k: v for k in sorted(self.entries() - PRIVATE_KEY_ENTRIES)
                if (v := self.value(k)) is not None}

    def private_key(self, entry: str) -> PrivateBytes | None:
        if entry not in PRIVATE_KEY_ENTRIES:
            raise KeyError(f"{entry!r} is not a private-key entry")
        if entry in self.string_data:
            return PrivateBytes(self.string_data[entry].encode())
        if entry in self.data:
            return PrivateBytes(base64.b64decode(self.data[entry] or ""))
        return None


@lenient
class Namespace(CoreObject):
    """A Namespace: its labels are what a Gateway API listener's allowedRoutes select."""


@lenient
class ConfigMap(CoreObject):
    """A ConfigMap: a Gateway API listener's client CA may be one (`ca.crt`)."""

    data: dict[str, str] = Field(default_factory=dict)


@lenient
class ServicePort:
    name: str | None = None
    port: int = Field(ge=1, le=65535)
    target_port: int | str | None = None
    protocol: str = "TCP"
    app_protocol: str | None = None


@lenient
class ServiceSpec:
    ports: list[ServicePort] = Field(default_factory=list)
    selector: dict[str, str] | None = None
    type: str = "ClusterIP"
    external_name: str | None = None


@lenient
class Service(CoreObject):
    spec: ServiceSpec = Field(default_factory=ServiceSpec)


def _ip(value: str) -> str:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        raise ValueError(f"{value!r} is not an IP address") from None
    return value


@lenient
class ObjectReference:
    kind: str | None = None
    name: str | None = None
    namespace: str | None = None


@lenient
class EndpointAddress:
    ip: str
    hostname: str | None = None
    target_ref: ObjectReference | None = None

    @field_validator("ip")
    @classmethod
    def _check_ip(cls, value: str) -> str:
        return _ip(value)


@lenient
class EndpointPort:
    name: str | None = None
    port: int = Field(ge=1, le=65535)
    protocol: str = "TCP"
    app_protocol: str | None = None


@lenient
class EndpointSubset:
    addresses: list[EndpointAddress] = Field(default_factory=list)
    not_ready_addresses: list[EndpointAddress] = Field(default_factory=list)
    ports: list[EndpointPort] = Field(default_factory=list)


@lenient
class Endpoints(CoreObject):
    subsets: list[EndpointSubset] = Field(default_factory=list)


@lenient
class EndpointConditions:
    ready: bool | None = None
    serving: bool | None = None
    terminating: bool | None = None


@lenient
class SliceEndpoint:
    addresses: list[str] = Field(min_length=1)
    conditions: EndpointConditions = Field(default_factory=EndpointConditions)
    target_ref: ObjectReference | None = None

    @field_validator("addresses")
    @classmethod
    def _check_ips(cls, values: list[str]) -> list[str]:
        return [_ip(v) for v in values]


@lenient
class SlicePort:
    name: str | None = None
    port: int | None = Field(default=None, ge=1, le=65535)
    protocol: str = "TCP"
    app_protocol: str | None = None


@lenient
class EndpointSlice(CoreObject):
    address_type: str = "IPv4"
    endpoints: list[SliceEndpoint] = Field(default_factory=list)
    ports: list[SlicePort] = Field(default_factory=list)


@lenient
class PodStatus:
    phase: str | None = None
    pod_ip: str | None = None


@lenient
class Pod(CoreObject):
    """What translation needs of a pod: its labels (which DestinationRule subsets select)."""

    status: PodStatus = Field(default_factory=PodStatus)


SERVICE_NAME_LABEL = "kubernetes.io/service-name"
