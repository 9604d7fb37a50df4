"""The Kubernetes Gateway API as a second source of the same IR: Gateways and HTTPRoutes are
converted to the Istio objects they mean (as Istio itself converts them), which the Istio
translation then serves; `status` works out the conditions Gateway API users read."""

from bastion.translate.gatewayapi import precedence
from bastion.translate.gatewayapi.convert import (
    GATEWAY_KIND,
    GENERATED,
    converted,
    original,
    with_gateway_api,
)

__all__ = ["GATEWAY_KIND", "GENERATED", "converted", "original", "precedence",
           "with_gateway_api"]
