"""Remote gateways: one control plane (`serve --no-envoy --xds-address`) and N agents with their
Envoys, all processes on this machine's loopback.

    .venv/bin/python -m bench.remote [--gateways 3 10] [--rotations 10] [--hosts 10000]
                                     [--groups 10]

It reports, for each N: the convergence time of one rotation across every gateway (from the
moment `bastion apply` of the changed Secret exits, and from its start, to the last gateway's
acknowledgement in the control plane's log, which a remote gateway sends once its Envoy took
the secret; then, as an upper bound, to the last gateway seen presenting the new serial), the
control plane's resident memory and CPU per connected gateway (idle, and per rotation); then
apply -> ACK of --hosts hosts spread over --groups gateway groups (one gateway each, hosts
assigned round-robin) against the same hosts on one gateway. Writes bench/results/remote.json. A benchmark: it
asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import re
import tempfile
import time
from pathlib import Path
from typing import Any

from tests import certs
from tests.e2e.harness import free_port, handshake_serial
from tests.e2e.remote import Agent, control_plane

from bench.common import cpu_seconds, machine, rss_mb, summarize, write_report
from bench.scale import ROOT, host, secret

IDLE_S = 10.0


def gateway(i: int, selector: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "networking.istio.io/v1", "kind": "Gateway",
            "metadata": {"name": f"gw-{i}", "namespace": "default"},
            "spec": {"selector": selector, "servers": [
                {"port": {"number": 443, "name": "https", "protocol": "HTTPS"},
                 "tls": {"mode": "SIMPLE", "credentialName": f"cred-{i}"},
                 "hosts": [host(i)]}]}}


def routes(i: int) -> dict[str, Any]:
    return {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
            "metadata": {"name": f"vs-{i}", "namespace": "default"},
            "spec": {"hosts": [host(i)], "gateways": [f"gw-{i}"], "http": [
                {"directResponse": {"status": 200, "body": {"string": "ok"}}}]}}


def manifest(hosts: int, groups: int) -> dict[str, Any]:
    """`hosts` hosts; host i is served by group i % groups (labels group=gK)."""
    items: list[dict[str, Any]] = []
    for i in range(hosts):
        items += [secret(i, 1), gateway(i, {"group": f"g{i % groups}"}), routes(i)]
    return {"apiVersion": "v1", "kind": "List", "items": items}


class Fleet:
    """A control plane and its agents, in one work directory."""

    def __init__(self, work: Path, agents: int, groups: int) -> None:
        self.work = work
        self.cp = control_plane(work / "cp", free_port(), "--ticket-key-rotation", "0",
                                "--metrics-address", "", "--log-level", "INFO")
        self.bundle = work / "root.crt"
        self.bundle.write_bytes(certs.ca(ROOT, "ec")[0].cert)
        self.agents: list[Agent] = []
        for k in range(agents):
            name = f"g{k}"
            self.cp.cli("certs", "gateway", name, "--out", str(work / "certs" / name))
            self.agents.append(Agent(work, name, [self.cp.xds_address],  # type: ignore[attr-defined]
                                     work / "certs" / name, self.cp.secure_port,
                                     labels=(f"group=g{k % groups}",),
                                     extra=("--log-level", "WARNING",
                                            "--envoy-log-level", "warning")))

    def start(self) -> None:
        for agent in self.agents:
            agent.start()
        deadline = time.monotonic() + 120
        while len(self.cp.status()["gateways"]) < len(self.agents):
            if time.monotonic() > deadline:
                raise TimeoutError("the agents did not all connect")
            time.sleep(0.2)

    def stop(self) -> None:
        for agent in self.agents:
            agent.stop()
        self.cp.stop()


def serial_of(agent: Agent, name: str, bundle: Path) -> int | None:
    try:
        return handshake_serial(name, agent.port, bundle, timeout=2.0)
    except OSError:
        return None


ACK_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d{3}) INFO gateway (\S+) "
                      r"accepted \(ACK\) SDS version \S+: (.*)$")


def acks(log: Path, since: float, secret_name: str) -> dict[str, float]:
    """When each gateway last acknowledged an SDS push naming `secret_name`, after `since`
    (the control plane's log; a remote gateway acknowledges once its Envoy took it)."""
    out: dict[str, float] = {}
    for line in log.read_text(errors="replace").splitlines()[-5000:]:
        match = ACK_LINE.match(line)
        if match and secret_name in match.group(4):
            at = time.mktime(time.strptime(match.group(1), "%Y-%m-%d %H:%M:%S"))
            at += int(match.group(2)) / 1000
            if at >= since:
                out[match.group(3)] = at
    return out


def converge(fleet: Fleet, target: int, serial: int) -> tuple[float, float, float]:
    """Rotate host `target`'s secret to `serial`. Seconds from the apply's start and from its
    exit to the last gateway's ACK (the control plane's log, millisecond stamps: watching
    costs the gateways nothing), and from the exit to the last gateway seen presenting the
    new serial (gateways polled in turn after that: an upper bound)."""
    path = fleet.work / "rotation.json"
    path.write_text(json.dumps(secret(target, serial)))
    log = fleet.cp.workdir / "state" / "bastion.log"
    started = time.time()
    fleet.cp.cli("apply", "-f", str(path))
    exited = time.time()
    deadline = started + 60
    seen: dict[str, float] = {}
    while len(seen) < len(fleet.agents):
        if time.time() > deadline:
            raise TimeoutError(f"only {sorted(seen)} acknowledged serial {serial}")
        time.sleep(0.02)
        seen = acks(log, started - 0.001, f"cred-{target}")
    last_ack = max(seen.values())
    for agent in fleet.agents:
        while serial_of(agent, host(target), fleet.bundle) != serial:
            if time.time() > deadline:
                raise TimeoutError(f"gateway {agent.name} never served serial {serial}")
    served = time.time()
    return last_ack - started, max(last_ack - exited, 0.0), served - exited


def rotation_round(n: int, rotations: int) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix=f"bastion-remote-{n}-"))
    fleet = Fleet(work, n, groups=1)
    try:
        assert fleet.cp.proc is not None
        pid = fleet.cp.proc.pid
        path = work / "hosts.json"
        path.write_text(json.dumps(manifest(1, 1)))
        fleet.cp.cli("apply", "-f", str(path))
        base_rss = rss_mb(pid)
        idle_before = cpu_seconds(pid)
        time.sleep(IDLE_S)
        idle_alone = (cpu_seconds(pid) - idle_before) / IDLE_S
        fleet.start()
        for agent in fleet.agents:
            while serial_of(agent, host(0), fleet.bundle) != 1:
                time.sleep(0.1)
        connected_rss = rss_mb(pid)
        idle_before = cpu_seconds(pid)
        time.sleep(IDLE_S)
        idle_connected = (cpu_seconds(pid) - idle_before) / IDLE_S
        from_start, from_exit, served = [], [], []
        cpu_before = cpu_seconds(pid)
        for k in range(rotations):
            a, b, c = converge(fleet, 0, 100 + k)
            from_start.append(a * 1000)
            from_exit.append(b * 1000)
            served.append(c * 1000)
        cpu_per_rotation = (cpu_seconds(pid) - cpu_before) / rotations
        return {
            "gateways": n,
            "rotation_ack_from_apply_exit": summarize(from_exit),
            "rotation_ack_from_apply_start": summarize(from_start),
            "rotation_served_from_apply_exit_upper_bound": summarize(served),
            "control_plane_rss_mb": {"no_gateway": round(base_rss, 1),
                                     "connected": round(connected_rss, 1),
                                     "per_gateway": round((connected_rss - base_rss) / n, 2)},
            "control_plane_idle_cpu_percent": {
                "no_gateway": round(idle_alone * 100, 2),
                "connected": round(idle_connected * 100, 2),
                "per_gateway": round((idle_connected - idle_alone) * 100 / n, 3)},
            "control_plane_cpu_ms_per_rotation": round(cpu_per_rotation * 1000, 1),
            "control_plane_cpu_ms_per_rotation_per_gateway": round(
                cpu_per_rotation * 1000 / n, 2),
        }
    finally:
        fleet.stop()


def apply_to_ack(hosts: int, groups: int) -> dict[str, Any]:
    """--hosts hosts over `groups` gateway groups of one gateway each: from the start of the
    apply to every gateway having taken its share (the control plane's `wait`, which the
    agents answer once their Envoy has taken it), then to each one's last host served."""
    work = Path(tempfile.mkdtemp(prefix=f"bastion-remote-scale-{groups}-"))
    fleet = Fleet(work, groups, groups)
    try:
        fleet.start()
        assert fleet.cp.proc is not None
        pid = fleet.cp.proc.pid
        path = work / "hosts.json"
        path.write_text(json.dumps(manifest(hosts, groups)))
        cpu_before = cpu_seconds(pid)
        agents_before = [cpu_seconds(a.proc.pid) for a in fleet.agents if a.proc is not None]
        started = time.perf_counter()
        fleet.cp.cli("apply", "-f", str(path))
        fleet.cp.cli("wait", "--timeout", "900s", "vs", f"vs-{hosts - 1}")
        acked = time.perf_counter() - started
        for k, agent in enumerate(fleet.agents):
            last = max(i for i in range(hosts) if i % groups == k)
            while serial_of(agent, host(last), fleet.bundle) != 1:
                time.sleep(0.05)
        served = time.perf_counter() - started
        agents_cpu = [cpu_seconds(a.proc.pid) - before for a, before in zip(
            fleet.agents, agents_before, strict=True) if a.proc is not None]
        return {"hosts": hosts, "groups": groups, "apply_to_ack_s": round(acked, 2),
                "apply_to_served_s": round(served, 2),
                "control_plane_cpu_s": round(cpu_seconds(pid) - cpu_before, 2),
                "agents_cpu_s": [round(c, 2) for c in agents_cpu],
                "control_plane_rss_mb": round(rss_mb(pid), 1),
                "envoy_rss_mb": [round(rss_mb(p), 1) for p in
                                 (a.envoy_pid() for a in fleet.agents) if p]}
    finally:
        fleet.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--gateways", type=int, nargs="*", default=[3, 10],
                        help="Gateway counts for the rotation rounds (none: skip them).")
    parser.add_argument("--rotations", type=int, default=10)
    parser.add_argument("--hosts", type=int, default=10_000)
    parser.add_argument("--groups", type=int, default=10)
    parser.add_argument("--no-scale", action="store_true", help="Only the rotation rounds.")
    parser.add_argument("--out", type=Path, default=Path("bench/results/remote.json"))
    args = parser.parse_args()
    report: dict[str, Any] = {"machine": machine(), "rotation": [], "scale": []}
    for n in args.gateways:
        row = rotation_round(n, args.rotations)
        report["rotation"].append(row)
        print(json.dumps(row), flush=True)
    for groups in () if args.no_scale else (1, args.groups):
        row = apply_to_ack(args.hosts, groups)
        report["scale"].append(row)
        print(json.dumps(row), flush=True)
    if report["scale"]:
        one, many = report["scale"][0], report["scale"][-1]
        report["scale_ratio"] = round(many["apply_to_ack_s"] / one["apply_to_ack_s"], 2)
    report["rotation_medians_ms"] = {
        r["gateways"]: r["rotation_ack_from_apply_exit"]["median_ms"] for r in report["rotation"]}
    write_report(args.out, report)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
