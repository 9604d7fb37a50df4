"""Translation's findings, made more helpful where the analysis knows more, and the
analyzers' own: once each, sorted."""

from __future__ import annotations

from datetime import datetime

from bastion.analysis import certificates, references
from bastion.build import Build
from bastion.diag import Diagnostic
from bastion.translate.gatewayapi import original, with_gateway_api
from bastion.translate.istio.resources import Resources


def analyze(res: Resources, build: Build, now: datetime) -> tuple[Diagnostic, ...]:
    namespaces = frozenset(w.namespace for w in build.gateways)
    found = [references.where_else(res, d, namespaces) if d.code == "CredentialNotFound"
             else d for d in build.diagnostics]
    # Certificates are served by Gateway API listeners too (as generated Istio Gateways).
    overlay = with_gateway_api(res)
    served = certificates.served(overlay, (g.ir.config for g in build.gateways.values()))
    own: list[Diagnostic] = [
        *(original(d, res) for d in (*certificates.expiry(served, now),
                                     *certificates.host_coverage(served),
                                     *certificates.differing_certificates(served))),
        *references.unselected_gateways(res, build.gateways),
        *references.conflicting_servers(res, build.gateways),
        *references.virtual_service_bindings(res),
    ]
    # A finding translation made already (it words it for the server it skipped) is not
    # repeated.
    made = {(d.object, d.field, d.code) for d in found}
    found += (d for d in own if (d.object, d.field, d.code) not in made)
    return tuple(sorted(set(found)))
