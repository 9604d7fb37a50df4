"""Data-plane drivers. Each turns the neutral per-gateway build into one data plane's
configuration and delivers it; Envoy (xDS over ADS, `dataplane.envoy`) is the one in use, and
another (HAProxy: a config file plus its runtime API) would be a sibling package. What is above
the seam sees only `DataPlane`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from bastion.build import Build
    from bastion.ir.workload import Workload


class DataPlane(Protocol):
    def publish(self, build: Build) -> list[str]:
        """Deliver each gateway group's build; returns the problems of groups whose new
        configuration was refused (their previous one stays in force)."""
        ...

    def groups(self) -> set[Workload]:
        """The gateway groups connected, or waiting for their first configuration."""
        ...

    def secrets(self) -> dict[str, str]:
        """Credentials the gateways hold, by data-plane name, with what each holds."""
        ...
