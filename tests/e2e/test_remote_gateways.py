"""Gateways on other hosts: agents connected to two control planes over mutual TLS. Each
gateway receives only its own Gateways and keys; a rotation reaches every replica; a control
plane killed mid-traffic costs no request; a gateway cut off from every control plane keeps
serving, and after a restart serves its disk cache at once, then resynchronises."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import grpc
import pytest
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2

from tests import certs
from tests.e2e.harness import Bastion, free_port, handshake_serial
from tests.e2e.loops import HandshakeLoop
from tests.e2e.netns import Host, hosts
from tests.e2e.remote import Agent, control_plane, wait_until
from tests.e2e.test_gateway_groups import dumped, gateway, routes
from tests.etcd import EtcdCluster
from tests.manifests import tls_secret_json as secret

LISTENER_TYPE = "type.googleapis.com/envoy.config.listener.v3.Listener"


def config(serial_a: int, serial_b: int = 22) -> str:
    return "\n---\n".join([
        secret("a-credential", certs.leaf("a.example.com", serial_a)),
        secret("b-credential", certs.leaf("b.example.com", serial_b)),
        gateway("gw-a", "istio: ingressgateway", 443, "a.example.com", "a-credential"),
        gateway("gw-b", "app: edge", 443, "b.example.com", "b-credential"),
        routes("a", "a.example.com", "gw-a"), routes("b", "b.example.com", "gw-b")])


def serial(host: str, agent: Agent, cafile: Path) -> int:
    return handshake_serial(host, agent.port, cafile, address=agent.address)


def ads_call(address: str, certs_dir: Path | None, ca: Path, gateway_name: str,
             namespace: str = "istio-system") -> grpc.StatusCode | int:
    """Open an ADS stream as `gateway_name` with the client certificate of `certs_dir` (none:
    no certificate) and return the status it ended with, or how many listeners it received."""
    key = chain = None
    if certs_dir is not None:
        key, chain = (certs_dir / "tls.key").read_bytes(), (certs_dir / "tls.crt").read_bytes()
    credentials = grpc.ssl_channel_credentials(ca.read_bytes(), key, chain)
    options = [("grpc.ssl_target_name_override", "xds.bastion-system.svc")]
    with grpc.secure_channel(address, credentials, options=options) as channel:
        request = discovery_pb2.DiscoveryRequest(type_url=LISTENER_TYPE)
        request.node.id, request.node.cluster = f"router~{gateway_name}", gateway_name
        request.node.metadata.update({"NAMESPACE": namespace,
                                      "LABELS": {"istio": "ingressgateway"}})
        done = threading.Event()

        def requests():  # type: ignore[no-untyped-def]
            yield request
            done.wait(10)  # the stream stays open until the answer has been read

        stream = ads_pb2_grpc.AggregatedDiscoveryServiceStub(channel).StreamAggregatedResources(
            requests(), timeout=5)
        try:
            return len(next(stream).resources)
        except grpc.RpcError as exc:
            return exc.code()
        finally:
            done.set()


def resumed(first: Agent, second: Agent, workdir: Path, cafile: Path) -> list[str]:
    """For TLS 1.2 and 1.3: a session begun on `first` (its ticket saved with -sess_out) and
    offered to `second` (-sess_in): whether `second` resumed it ("Reused") or not ("New")."""
    outcomes = []
    for version in ("-tls1_2", "-tls1_3"):
        session = workdir / f"session{version}.pem"
        session.unlink(missing_ok=True)
        for agent, flag in ((first, "-sess_out"), (second, "-sess_in")):
            # A request, and a moment before closing: TLS 1.3's tickets come after the
            # handshake, and s_client reads them with the answer.
            shown = subprocess.run(
                "(printf 'GET / HTTP/1.1\\r\\nHost: a.example.com\\r\\n\\r\\n'; sleep 0.5) | "
                f"openssl s_client -connect {agent.address}:{agent.port} -alpn http/1.1 "
                f"-servername a.example.com -CAfile {cafile} {version} {flag} {session}",
                shell=True, capture_output=True, text=True, timeout=20)
        line = next((x for x in shown.stdout.splitlines()
                     if x.startswith(("New,", "Reused,"))), "no session: " + shown.stderr[-300:])
        outcomes.append(line.split(",")[0] if line.startswith(("New", "Reused")) else line)
    return outcomes


@pytest.fixture
def planes(tmp_path: Path):  # type: ignore[no-untyped-def]
    """Two control planes on this machine sharing a three-member etcd, serving gateways on all
    addresses (the test hosts reach them over their control links)."""
    started: list[Bastion] = []
    port = free_port()
    (tmp_path / "etcd").mkdir()
    cluster = EtcdCluster(tmp_path / "etcd")
    try:
        cluster.start()
        store = "etcd://" + ",".join(cluster.endpoints)
        for name in ("cp1", "cp2"):
            cp = control_plane(tmp_path / name, port, "--store", store, "--bind-address",
                               "0.0.0.0", xds_host="0.0.0.0")
            started.append(cp)
        yield cluster, started
    finally:
        for cp in started:
            cp.stop()
        cluster.stop()


def test_three_gateway_hosts_on_two_control_planes_sharing_etcd(
        tmp_path: Path, planes: tuple[EtcdCluster, list[Bastion]]) -> None:
    cluster, (cp1, cp2) = planes
    ports = [cp.xds_address.rpartition(":")[2] for cp in (cp1, cp2)]  # type: ignore[attr-defined]
    cp1.cli("apply", "-f", "-", input=config(11))  # through one: served by both
    # The first control plane made the xDS CA; certificates from either verify with it.
    for name, cp in (("g1", cp1), ("g2", cp2), ("g3", cp1)):
        out = cp.cli("certs", "gateway", name, "--out", str(tmp_path / "certs" / name))
        assert f"spiffe://bastion/ns/istio-system/gateway/{name}" in out.stdout
        assert "PRIVATE" not in out.stdout + out.stderr
    assert (tmp_path / "certs/g1/ca.crt").read_bytes() == (
        tmp_path / "certs/g2/ca.crt").read_bytes()
    cafile = tmp_path / "root.crt"
    cafile.write_bytes(certs.ca("root1")[0].cert)
    with hosts(3) as (h1, h2, h3):
        def agent(name: str, host: Host, order: int, *labels: str) -> Agent:
            planes_seen = [f"{host.control_peer}:{p}" for p in ports]
            return Agent(tmp_path, name, planes_seen[::order], tmp_path / "certs" / name,
                         cp1.secure_port, labels=labels, host=host, port=443)

        # g1 and g2 are replicas selecting Gateway A only; g3 also carries app=edge (B).
        g1, g2 = agent("g1", h1, 1), agent("g2", h2, -1)
        g3 = agent("g3", h3, 1, "istio=ingressgateway", "app=edge")
        agents = [g1, g2, g3]
        try:
            for each in agents:
                each.start()
            for each in agents:
                wait_until(lambda a=each: serial("a.example.com", a, cafile) == 11, 60,
                           f"{each.name} to serve a.example.com: {each.log()}")
            wait_until(lambda: serial("b.example.com", g3, cafile) == 22, 30, "g3 serves b")

            # g1 selects only Gateway A: B's key never reaches it (nor its name).
            one, three = g1.config_dump(), g3.config_dump()
            assert dumped(one, "secrets") == ["bastion:session-ticket-keys",
                                              "kubernetes://a-credential"]
            assert "b-credential" not in json.dumps(one)
            assert "b.example.com" not in json.dumps(one)
            assert "kubernetes://b-credential" in dumped(three, "secrets")

            # Either control plane's status shows the whole fleet: both, and whom each serves.
            wait_until(lambda: fleet(cp2, [cp1, cp2]) == {"g1": 1, "g2": 2, "g3": 1}, 30,
                       "the fleet in cp2's status")

            # A session begun on g1 (served by cp1) resumes on g2 (served by cp2).
            assert resumed(g1, g2, tmp_path, cafile) == ["Reused", "Reused"]

            # A rotation through either control plane reaches all three, and so does one
            # made while an etcd member is down.
            # `wait` on cp2 returns once every gateway of the fleet holds it, cp1's too.
            cp2.cli("apply", "-f", "-", input=config(12))
            cp2.cli("wait", "--for=distribution", "--timeout", "30s", "-n", "istio-system",
                    "secret", "a-credential")
            assert [serial("a.example.com", a, cafile) for a in agents] == [12, 12, 12]
            cluster.kill_member(0)
            cp1.cli("apply", "-f", "-", input=config(13))
            for each in agents:
                wait_until(lambda a=each: serial("a.example.com", a, cafile) == 13, 30,
                           f"{each.name} to rotate with etcd member m0 down")
            cluster.start_member(0)

            # cp1 killed during traffic through g1 and g3 (its gateways): not one handshake
            # fails, and both follow cp2 (a rotation made there reaches them).
            loops = [HandshakeLoop("a.example.com", a.port, cafile, max_seconds=20,
                                   address=a.address) for a in (g1, g3)]
            for loop in loops:
                loop.start()
            time.sleep(1)
            cp1.kill_control_plane()
            cp2.cli("apply", "-f", "-", input=config(14))
            for each in agents:
                wait_until(lambda a=each: serial("a.example.com", a, cafile) == 14, 30,
                           f"{each.name} to fail over to cp2: {each.log()}")
            time.sleep(1)
            for loop in loops:
                tally = loop.finish()
                assert tally.errors == [] and tally.ok > 10, tally.errors[:3]
                assert set(tally.serials) <= {13, 14}
            # cp1's announcement ends with its lease: cp2 serves the whole fleet.
            wait_until(lambda: fleet(cp2, [cp1, cp2]) == {"g1": 2, "g2": 2, "g3": 2}, 30,
                       "the fleet after cp1's loss")

            # h1 cut off from every control plane: g1 keeps serving what it holds, while a
            # rotation reaches the others only.
            h1.cut_control()
            cp2.cli("apply", "-f", "-", input=config(15))
            for each in (g2, g3):
                wait_until(lambda a=each: serial("a.example.com", a, cafile) == 15, 30,
                           f"{each.name} to rotate")
            assert serial("a.example.com", g1, cafile) == 14
            # Its Envoy and agent killed while cut off: started again, it serves its disk
            # cache at once.
            cache = g1.state_dir / "last-config.json"
            assert stat.S_IMODE(cache.stat().st_mode) == 0o600
            assert stat.S_IMODE(g1.state_dir.stat().st_mode) == 0o700
            g1.kill()
            g1.start()
            wait_until(lambda: serial("a.example.com", g1, cafile) == 14, 30,
                       f"g1 to serve from its disk cache: {g1.log()}")
            # The link comes back: g1 resynchronises.
            h1.restore_control()
            wait_until(lambda: serial("a.example.com", g1, cafile) == 15, 60,
                       f"g1 to resynchronise: {g1.log()}")
        finally:
            for each in agents:
                each.stop()


def fleet(asked: Bastion, planes: list[Bastion]) -> dict[str, int]:
    """Per `asked`'s status: which control plane (1, 2, ... in `planes`) serves each gateway."""
    out = {}
    for name, plane in asked.status()["fleet"].items():
        index = next(i for i, cp in enumerate(planes, 1)
                     if name.endswith("/" + cp.xds_address))  # type: ignore[attr-defined]
        for served in plane["gateways"]:
            out[served["node"].split("~")[1].split(".")[0]] = index
    return out


def _single_plane(tmp_path: Path, *extra: str) -> Bastion:
    return control_plane(tmp_path / "cp", free_port(), *extra)


def test_an_unauthenticated_or_impersonating_client_receives_nothing(tmp_path: Path) -> None:
    cp1 = _single_plane(tmp_path)
    try:
        _refusals(tmp_path, cp1)
    finally:
        cp1.stop()


def _refusals(tmp_path: Path, cp1: Bastion) -> None:
    address = cp1.xds_address  # type: ignore[attr-defined]
    cp1.cli("apply", "-f", "-", input=config(11))
    own = tmp_path / "certs" / "g1"
    cp1.cli("certs", "gateway", "g1", "--out", str(own))
    ca = own / "ca.crt"
    assert ads_call(address, own, ca, "g1") == 1  # the certificate's own gateway: served
    assert ads_call(address, None, ca, "g1") == grpc.StatusCode.UNAVAILABLE  # no certificate
    assert ads_call(address, own, ca, "g2") == grpc.StatusCode.PERMISSION_DENIED
    assert ads_call(address, own, ca, "g1", "other") == grpc.StatusCode.PERMISSION_DENIED
    # A certificate from another CA is refused in the handshake.
    stranger = tmp_path / "stranger"
    stranger.mkdir()
    pair = certs.leaf("g1", 5, root="elsewhere")
    (stranger / "tls.crt").write_bytes(pair.cert)
    (stranger / "tls.key").write_bytes(pair.key)
    assert ads_call(address, stranger, ca, "g1") == grpc.StatusCode.UNAVAILABLE
    assert "refused a gateway stream" in cp1.serve_log()


def test_without_shared_ticket_keys_a_session_does_not_resume_on_another_replica(
        tmp_path: Path) -> None:
    """The control: each Envoy with keys of its own (rotation 0) refuses the other's ticket."""
    cp = _single_plane(tmp_path, "--ticket-key-rotation", "0")
    cafile = tmp_path / "root.crt"
    cafile.write_bytes(certs.ca("root1")[0].cert)
    agents = []
    try:
        cp.cli("apply", "-f", "-", input=config(11))
        for name in ("r1", "r2"):
            cp.cli("certs", "gateway", name, "--out", str(tmp_path / name))
            agents.append(Agent(tmp_path, name, [cp.xds_address],  # type: ignore[attr-defined]
                                tmp_path / name, cp.secure_port))
            agents[-1].start()
        for agent in agents:
            wait_until(lambda a=agent: serial("a.example.com", a, cafile) == 11, 60,
                       f"{agent.name} to serve")
        assert resumed(agents[0], agents[1], tmp_path, cafile) == ["New", "New"]
        assert resumed(agents[0], agents[0], tmp_path, cafile) == ["Reused", "Reused"]
    finally:
        for agent in agents:
            agent.stop()
        cp.stop()


def test_the_agent_says_where_its_configuration_comes_from(tmp_path: Path) -> None:
    """`bastion status` and `proxy-config` on the gateway's host, through the agent's socket."""
    cp = _single_plane(tmp_path)
    cafile = tmp_path / "root.crt"
    cafile.write_bytes(certs.ca("root1")[0].cert)
    agent = None
    try:
        cp.cli("apply", "-f", "-", input=config(11))
        cp.cli("certs", "gateway", "g1", "--out", str(tmp_path / "g1"))
        agent = Agent(tmp_path, "g1", [cp.xds_address],  # type: ignore[attr-defined]
                      tmp_path / "g1", cp.secure_port)
        agent.start()
        wait_until(lambda: serial("a.example.com", agent, cafile) == 11, 60, "g1 serves")

        def local(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run([sys.executable, "-m", "bastion", "--state-dir",
                                   str(agent.state_dir), *args],  # type: ignore[union-attr]
                                  capture_output=True, text=True, timeout=60)

        shown = json.loads(local("status", "-o", "json").stdout)["agent"]
        assert shown["current"] == cp.xds_address  # type: ignore[attr-defined]
        assert shown["name"] == "g1" and shown["lastConfigSeconds"] is not None
        wait_until(lambda: "written" in local("status").stdout, 20, "the disk cache")
        assert "kubernetes://a-credential" in local("proxy-config", "secret").stdout
        cp.kill_control_plane()
        wait_until(lambda: "none answers" in local("status").stdout, 30, "the agent to notice")
        assert "PRIVATE" not in local("status", "-o", "json").stdout
    finally:
        if agent is not None:
            agent.stop()
        cp.stop()


def test_a_gateway_renews_its_own_certificate(tmp_path: Path) -> None:
    """Due at once (--renew-before longer than its life): the agent makes a new key, the
    control plane signs it for the same identity, the files are replaced, and a restarted
    agent connects with them."""
    from cryptography import x509

    cp = _single_plane(tmp_path)
    cafile = tmp_path / "root.crt"
    cafile.write_bytes(certs.ca("root1")[0].cert)
    files = tmp_path / "g1"
    agent = None
    try:
        cp.cli("apply", "-f", "-", input=config(11))
        cp.cli("certs", "gateway", "g1", "--out", str(files))
        first = x509.load_pem_x509_certificate((files / "tls.crt").read_bytes())
        first_key = (files / "tls.key").read_bytes()
        agent = Agent(tmp_path, "g1", [cp.xds_address], files,  # type: ignore[attr-defined]
                      cp.secure_port, extra=("--renew-before", str(400 * 86400)))
        agent.start()
        wait_until(lambda: x509.load_pem_x509_certificate(
            (files / "tls.crt").read_bytes()).serial_number != first.serial_number, 30,
            f"the certificate to be renewed: {agent.log()}")
        renewed = x509.load_pem_x509_certificate((files / "tls.crt").read_bytes())
        assert (files / "tls.key").read_bytes() != first_key  # a new key, made there
        assert stat.S_IMODE((files / "tls.key").stat().st_mode) == 0o600
        assert renewed.extensions.get_extension_for_class(
            x509.SubjectAlternativeName).value.get_values_for_type(
            x509.UniformResourceIdentifier) == ["spiffe://bastion/ns/istio-system/gateway/g1"]
        assert "renewed the client certificate of spiffe://bastion/ns/istio-system/gateway/g1" \
            in cp.serve_log()
        agent.kill()
        agent.start()  # with the renewed files only
        wait_until(lambda: serial("a.example.com", agent, cafile) == 11, 60, "g1 serves")
        shown = json.loads(subprocess.run(
            [sys.executable, "-m", "bastion", "--state-dir", str(agent.state_dir), "status",
             "-o", "json"], capture_output=True, text=True, timeout=60).stdout)
        assert shown["agent"]["current"] == cp.xds_address  # type: ignore[attr-defined]
    finally:
        if agent is not None:
            agent.stop()
        cp.stop()
