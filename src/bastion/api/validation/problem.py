"""What a validation rule finds: a field path, a reason, and whether Istio refuses the object or
only warns."""

from __future__ import annotations

from typing import NamedTuple


class Problem(NamedTuple):
    at: str  # the field, e.g. "spec.servers[0].tls.mode"
    message: str
    warning: bool = False


def warn(at: str, message: str) -> Problem:
    return Problem(at, message, warning=True)
