"""Each TLS server knows the hosts the other servers of its port serve (for 421 on coalesced
connections), up to a bound: the lists grow with the square of the servers, so a port with more
servers than the bound keeps none."""

from __future__ import annotations

from bastion.build import Inputs, build
from bastion.ir.workload import Workload
from bastion.translate.istio import Options
from bastion.translate.istio.gateway import MISDIRECTED_LIMIT
from tests.unit.build.test_build import gateway, put, secret


def servers(count: int):  # type: ignore[no-untyped-def]
    inputs = Inputs()
    put(inputs, secret("c", 1, "h0.example.com"), 1)
    for i in range(count):
        put(inputs, gateway(f"gw-{i}", {"istio": "ingressgateway"}, f"h{i}.example.com", "c"),
            i + 2)
    result = build(None, inputs, count + 2, [Workload()], Options())
    (listener,) = result.gateways[Workload()].ir.config.listeners
    return listener.servers


def test_each_server_knows_the_other_hosts_of_its_port() -> None:
    three = servers(3)
    assert [s.misdirected_hosts for s in three] == [
        ("h1.example.com", "h2.example.com"), ("h0.example.com", "h2.example.com"),
        ("h0.example.com", "h1.example.com")]


def test_no_lists_above_the_bound() -> None:
    many = servers(MISDIRECTED_LIMIT + 1)
    assert len(many) == MISDIRECTED_LIMIT + 1
    assert all(s.misdirected_hosts == () for s in many)
