"""Istio resources (Gateway, VirtualService, ServiceEntry, Secret, Service, Endpoints) to the IR."""

from bastion.translate.istio.gateway import (
    IrResult,
    refresh_credentials,
    refresh_routes,
    to_ir,
)
from bastion.translate.istio.resources import Options, Resources, Workload

__all__ = ["IrResult", "Options", "Resources", "Workload", "refresh_credentials",
           "refresh_routes", "to_ir"]
