"""The real Envoy accepts what every golden case translates to: `envoy --mode validate` on a
static bootstrap holding the same listeners, routes, clusters and secrets (with real keys)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml
from envoy.config.bootstrap.v3 import bootstrap_pb2
from envoy.config.cluster.v3 import cluster_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from envoy.extensions.transport_sockets.quic.v3 import quic_transport_pb2
from envoy.extensions.transport_sockets.tls.v3 import tls_pb2
from google.protobuf import json_format

from bastion.build import GatewayBuild
from bastion.dataplane.envoy.bootstrap import runtime_layers
from bastion.dataplane.envoy.driver import render_checked
from bastion.dataplane.envoy.resources import CLUSTER, ENDPOINT, LISTENER, ROUTE, SECRET
from bastion.dataplane.envoy.snapshot import Snapshot
from bastion.dataplane.envoy.supervisor import envoy_binary
from bastion.translate.istio import IrResult, Workload
from tests.golden.cases import case_build
from tests.golden.test_ir_to_xds import case_files as ir_case_files
from tests.golden.test_ir_to_xds import config_of
from tests.golden.test_translate import case_files


def istio_snapshot(case: dict) -> Snapshot:  # type: ignore[type-arg]
    return render_checked(case_build(case, bind_address="127.0.0.1")[0])


def ir_snapshot(case: dict) -> Snapshot:  # type: ignore[type-arg]
    return render_checked(GatewayBuild(Workload(), IrResult(config_of(case), ())))


def static_bootstrap(snapshot: Snapshot) -> bootstrap_pb2.Bootstrap:
    boot = bootstrap_pb2.Bootstrap()
    routes = {n: r.message for n, r in snapshot.of(ROUTE).items()}
    for listener in (r.message for r in snapshot.of(LISTENER).values()):
        listener = type(listener).FromString(listener.SerializeToString())
        for chain in listener.filter_chains:
            for network_filter in chain.filters:
                hcm = hcm_pb2.HttpConnectionManager()
                if not network_filter.typed_config.Unpack(hcm):
                    continue  # tcp_proxy (TLS passthrough)
                hcm.route_config.CopyFrom(routes[hcm.rds.route_config_name])
                network_filter.typed_config.Pack(hcm)
            if chain.HasField("transport_socket"):
                quic = quic_transport_pb2.QuicDownstreamTransport()
                is_quic = chain.transport_socket.typed_config.Unpack(quic)
                context = quic.downstream_tls_context if is_quic else tls_pb2.DownstreamTlsContext()
                if not is_quic:
                    chain.transport_socket.typed_config.Unpack(context)
                _static_secrets(context.common_tls_context)
                chain.transport_socket.typed_config.Pack(quic if is_quic else context)
        boot.static_resources.listeners.append(listener)
    endpoints = {n: r.message for n, r in snapshot.of(ENDPOINT).items()}
    for cluster in (r.message for r in snapshot.of(CLUSTER).values()):
        cluster = type(cluster).FromString(cluster.SerializeToString())
        if cluster.HasField("transport_socket"):
            upstream = tls_pb2.UpstreamTlsContext()
            cluster.transport_socket.typed_config.Unpack(upstream)
            _static_secrets(upstream.common_tls_context)
            cluster.transport_socket.typed_config.Pack(upstream)
        if cluster.HasField("eds_cluster_config"):
            cluster.ClearField("eds_cluster_config")
            cluster.type = cluster_pb2.Cluster.STATIC
            cluster.load_assignment.CopyFrom(endpoints[cluster.name])
        boot.static_resources.clusters.append(cluster)
    boot.static_resources.secrets.extend(r.message for r in snapshot.of(SECRET).values())
    json_format.ParseDict(runtime_layers(), boot.layered_runtime)
    return boot


def _static_secrets(common: tls_pb2.CommonTlsContext) -> None:
    """SDS references to the static secrets of the same names."""
    for sds in common.tls_certificate_sds_secret_configs:
        sds.ClearField("sds_config")
    if common.HasField("combined_validation_context"):
        common.combined_validation_context.validation_context_sds_secret_config.ClearField(
            "sds_config")


CASES = [(path, istio_snapshot) for path in case_files()] + [
    (path, ir_snapshot) for path in ir_case_files()]


@pytest.mark.parametrize(("path", "snapshot_of"), CASES,
                         ids=[f"{p.parent.name}/{p.name.removesuffix('.in.yaml')}" for p, _ in CASES])
def test_envoy_validates_translation(path: Path, snapshot_of, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    boot = static_bootstrap(snapshot_of(yaml.safe_load(path.read_text())))
    config = tmp_path / "bootstrap.json"
    config.write_text(json_format.MessageToJson(boot))
    result = subprocess.run([str(envoy_binary()), "--mode", "validate", "-c", str(config),
                             "--disable-hot-restart", "--log-level", "error"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "OK" in result.stdout + result.stderr
