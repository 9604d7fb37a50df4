"""Test hosts on one machine: network namespaces the test creates, each joined to the machine by
two veth links, `data` (where clients reach the host's gateway) and `control` (its way to the
control planes, which a test may cut without cutting the clients off).

Names and subnets are handed out under a lock, so tests running in parallel never share one;
the namespaces (and with them their links) are deleted at the end. A machine that cannot make
namespaces fails the test, saying so: nothing is skipped."""

from __future__ import annotations

import contextlib
import fcntl
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

LOCK = Path("/tmp/bastion-test-netns.lock")


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=20)
    if check and result.returncode != 0:
        pytest.fail(f"`ip {' '.join(args)}` failed (network namespaces need root and "
                    f"iproute2): {result.stderr.strip()}")
    return result


@dataclass
class Host:
    namespace: str
    data_ip: str  # the host's address clients connect to
    control_peer: str  # the machine's end of the control link, as the host reaches it
    control_link: str  # the machine's side of the control veth

    def command(self, *argv: str) -> list[str]:
        return ["ip", "netns", "exec", self.namespace, *argv]

    def run(self, *argv: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.command(*argv), capture_output=True, text=True,
                              timeout=timeout)

    def cut_control(self) -> None:
        ip("link", "set", self.control_link, "down")

    def restore_control(self) -> None:
        ip("link", "set", self.control_link, "up")


def _used() -> tuple[set[str], set[int]]:
    names = {line.split()[0] for line in ip("netns", "list").stdout.splitlines() if line}
    octets = set()
    for line in ip("-o", "-4", "addr").stdout.splitlines():
        address = line.split()[3]
        parts = address.split(".")
        if parts[0] == "10":
            octets.add(int(parts[1]) * 256 + int(parts[2]))
    return names, octets


def _make(index: int, third: int, second: int) -> Host:
    """Host `index` on 10.second.third.0/24 (data) and 10.second.third+1.0/24 (control)."""
    namespace = f"bst{index}"
    ip("netns", "add", namespace)
    host = None
    for role, octet in (("d", third), ("c", third + 1)):
        outside, inside = f"b{index}{role}o", f"b{index}{role}i"
        ip("link", "add", outside, "type", "veth", "peer", "name", inside)
        ip("link", "set", inside, "netns", namespace)
        ip("addr", "add", f"10.{second}.{octet}.1/24", "dev", outside)
        ip("link", "set", outside, "up")
        ip("netns", "exec", namespace, "ip", "addr", "add", f"10.{second}.{octet}.2/24",
           "dev", inside)
        ip("netns", "exec", namespace, "ip", "link", "set", inside, "up")
        if role == "c":
            host = Host(namespace, f"10.{second}.{third}.2", f"10.{second}.{octet}.1", outside)
    ip("netns", "exec", namespace, "ip", "link", "set", "lo", "up")
    assert host is not None
    return host


@contextlib.contextmanager
def hosts(count: int) -> Iterator[list[Host]]:
    made: list[Host] = []
    try:
        with LOCK.open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            names, octets = _used()
            index = 0
            slot = 200 * 256
            for _ in range(count):
                while f"bst{index}" in names:
                    index += 1
                while slot in octets or slot + 1 in octets:
                    slot += 2
                made.append(_make(index, slot % 256, slot // 256))
                names.add(f"bst{index}")
                octets |= {slot, slot + 1}
        yield made
    finally:
        for host in made:
            ip("netns", "del", host.namespace, check=False)
