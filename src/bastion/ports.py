"""Choosing local ports for listeners that are bound a little later (by Envoy, or a sample),
and the control plane's own default addresses."""

from __future__ import annotations

import random
import socket
from pathlib import Path

# Prometheus metrics, on Istio's monitoring port (loopback: no one else needs to reach it).
METRICS_ADDRESS = "127.0.0.1:15014"


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def free_listener_port(host: str = "127.0.0.1") -> int:
    """A free port below the kernel's ephemeral range: a port from that range can be taken by
    any outgoing connection (a load generator opens thousands) between the moment it is chosen
    and the moment it is bound."""
    low, _ = _ephemeral_range()
    candidates = list(range(10000, max(10001, low)))
    random.shuffle(candidates)
    for port in candidates[:2000]:
        with socket.socket() as s:
            try:
                s.bind((host, port))
            except OSError:
                continue
            return port
    with socket.socket() as s:  # no room below the range: let the kernel choose
        s.bind((host, 0))
        return int(s.getsockname()[1])
