"""The DestinationRule index by host: kept true through puts, host changes and removals, and
giving the rule a scan of every rule gives."""

from __future__ import annotations

from typing import Any

from bastion.api import istio
from bastion.api.admission import Admitted, admit
from bastion.translate.istio import policies
from bastion.translate.istio.resources import Resources


def rule(name: str, namespace: str, host: str) -> istio.DestinationRule:
    raw: dict[str, Any] = {"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
                           "metadata": {"name": name, "namespace": namespace},
                           "spec": {"host": host}}
    verdict = admit(raw)
    assert isinstance(verdict, Admitted)
    assert isinstance(verdict.model, istio.DestinationRule)
    return verdict.model


DESTINATIONS = ["web.apps.svc.cluster.local", "api.example.com", "a.b.example.com",
                "db.other.svc.cluster.local", "nothing.test"]


def same_as_a_scan(res: Resources) -> None:
    for host in DESTINATIONS:
        for namespace in ("istio-system", "apps", "other"):
            assert policies.rule_for(res.rules_for_host(host), host, namespace) == \
                policies.rule_for(res.destination_rules.values(), host, namespace), host


def test_the_index_finds_what_a_scan_finds() -> None:
    res = Resources()
    for model in [rule("web", "apps", "web"), rule("all", "istio-system", "*"),
                  rule("wild", "apps", "*.example.com"), rule("deep", "other", "*.b.example.com"),
                  rule("api", "other", "api.example.com"), rule("local", "apps", "*.apps.svc.cluster.local")]:
        res.put(model)
    same_as_a_scan(res)
    res.put(rule("web", "apps", "db.other.svc.cluster.local"))  # the same rule, a new host
    assert [r.metadata.name for r in res.rules_for_host("web.apps.svc.cluster.local")] == [
        "local", "all"]
    same_as_a_scan(res)
    res.remove(istio.DestinationRule, ("istio-system", "all"))
    res.remove(istio.DestinationRule, ("apps", "wild"))
    assert res.rules_for_host("nothing.test") == []
    same_as_a_scan(res)
    assert set(res.rules_by_host) == {"db.other.svc.cluster.local", "*.b.example.com",
                                      "api.example.com", "*.apps.svc.cluster.local"}
