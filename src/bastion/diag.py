"""User-facing problems as data.

Bad configuration never raises inside the core: it becomes a `Diagnostic` attached to the object that
caused it, so the same value can be shown by `apply`, `status`, the log and golden files.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def one_line(text: str) -> str:
    """User text (keys, values) may hold control characters; messages stay on one line."""
    return CONTROL.sub(lambda m: repr(m.group())[1:-1], text)


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


@dataclass(frozen=True, order=True)
class ObjectRef:
    """Identifies a stored object the way users name it (`Gateway default/mygateway`)."""

    kind: str
    namespace: str
    name: str

    def __str__(self) -> str:
        if self.namespace:
            return one_line(f"{self.kind} {self.namespace}/{self.name}")
        return one_line(f"{self.kind} {self.name}")


@dataclass(frozen=True, order=True)
class Diagnostic:
    object: ObjectRef
    field: str
    code: str
    message: str
    severity: Severity = Severity.ERROR

    def __str__(self) -> str:
        where = f"{self.object}: {self.field}" if self.field else str(self.object)
        return one_line(f"{where}: {self.message}")

    def to_dict(self) -> dict[str, str]:
        return {
            "object": str(self.object),
            "kind": self.object.kind,
            "namespace": self.object.namespace,
            "name": self.object.name,
            "field": self.field,
            "code": self.code,
            "message": self.message,
            "severity": str(self.severity),
        }
