"""Istio's semantic rules for Gateways, VirtualServices and ServiceEntries, beyond what the schema
checks (and cert-manager's for Certificates and Issuers, `certificate`).

Each rule follows one of Istio's own admission checks (`pkg/config/validation` in istio/istio), so
YAML that istiod refuses is refused here with the field named, YAML it accepts with a warning is
accepted with that warning, and YAML it accepts is accepted. Where bastion is stricter, the rule
says why (Envoy would refuse the result).
"""

from bastion.api.validation.certificate import (
    certificate_problems,
    go_duration_s,
    issuer_problems,
)
from bastion.api.validation.destination_rule import destination_rule_problems
from bastion.api.validation.gateway import (
    ISTIO_CIPHER_SUITES,
    ISTIO_ECDH_CURVES,
    gateway_problems,
    is_known_cipher,
)
from bastion.api.validation.gatewayapi import (
    backend_tls_policy_problems,
    gateway_api_gateway_problems,
    http_route_problems,
    tls_route_problems,
)
from bastion.api.validation.names import DNS1123_SUBDOMAIN, is_ip
from bastion.api.validation.problem import Problem
from bastion.api.validation.service_entry import service_entry_problems
from bastion.api.validation.values import (
    RE2_MAX_PROGRAM_SIZE,
    duration_ns,
    is_authority,
    regex_problem,
)
from bastion.api.validation.virtual_service import (
    GRPC_STATUS,
    direct_response_bytes,
    operable,
    redirect_served,
    virtual_service_problems,
)

__all__ = [
    "DNS1123_SUBDOMAIN",
    "GRPC_STATUS",
    "ISTIO_CIPHER_SUITES",
    "ISTIO_ECDH_CURVES",
    "RE2_MAX_PROGRAM_SIZE",
    "Problem",
    "backend_tls_policy_problems",
    "certificate_problems",
    "destination_rule_problems",
    "direct_response_bytes",
    "duration_ns",
    "gateway_api_gateway_problems",
    "gateway_problems",
    "go_duration_s",
    "http_route_problems",
    "is_authority",
    "is_ip",
    "is_known_cipher",
    "issuer_problems",
    "operable",
    "redirect_served",
    "regex_problem",
    "service_entry_problems",
    "tls_route_problems",
    "virtual_service_problems",
]
