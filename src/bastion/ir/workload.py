"""Which gateway a configuration is for, in the terms a gateway declares about itself.

A gateway (an Envoy, or another data plane) says who it is when it connects: its labels and its
namespace, as Istio's gateways do in their node metadata. Gateways with the same labels and
namespace are one group: they select the same Istio Gateways, read credentials from the same
namespace, and so hold the same configuration. The build makes one configuration per group, and
the data plane keeps one snapshot per group.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Workload:
    """A gateway group: its labels pick Gateways by selector; its namespace is where credentials
    are read (Istio reads them beside the gateway pod)."""

    labels: tuple[tuple[str, str], ...] = (("istio", "ingressgateway"),)
    namespace: str = "istio-system"

    @classmethod
    def of(cls, labels: dict[str, str], namespace: str) -> Workload:
        return cls(tuple(sorted(labels.items())), namespace)

    @property
    def label_map(self) -> dict[str, str]:
        return dict(self.labels)

    def __str__(self) -> str:
        labels = ",".join(f"{k}={v}" for k, v in self.labels)
        return f"{self.namespace}/{{{labels}}}"
