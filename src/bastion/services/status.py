"""`bastion status`: assembled from the parts that own each piece (the store's revision, the
pipeline's build and problems, the gateways' streams, the credentials they hold, the Envoy
process), none of which knows the others."""

from __future__ import annotations

from typing import Any

from bastion.dataplane import DataPlane
from bastion.services.pipeline import Pipeline
from bastion.store import ObjectStore


def gather(store: ObjectStore, pipeline: Pipeline, dataplane: DataPlane,
           gateways: list[dict[str, Any]], envoy: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "revision": store.revision,
        **pipeline.status(),
        "gateways": gateways,
        "secrets": dataplane.secrets(),
        "envoy": envoy,
        # Every control plane sharing the store, with the gateways each serves.
        "fleet": store.presences(),
    }
