"""Admission's verdict on one object, in the three words Istio's validation has: accepted,
accepted with a warning, or refused."""

from __future__ import annotations

import copy
from typing import Any

from bastion.api.admission import Admitted, admit

ACCEPT, WARN, REJECT = "accept", "warn", "reject"


def verdict(obj: dict[str, Any]) -> tuple[str, str]:
    """(verdict, the message or the warnings joined)."""
    result = admit(copy.deepcopy(obj))
    if isinstance(result, Admitted):
        if result.warnings:
            return WARN, "; ".join(f"{w.field}: {w.message}" for w in result.warnings)
        return ACCEPT, ""
    return REJECT, result.message


def check(obj: dict[str, Any], expected: str, fragment: str) -> None:
    got, message = verdict(obj)
    assert got == expected, f"{expected} expected, got {got}: {message}"
    assert fragment in message, message
    assert "\n" not in message
