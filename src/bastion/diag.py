"""User-facing problems as data.

Bad configuration never raises inside the core: it becomes a `Diagnostic` attached to the object that
caused it, so the same value can be shown by `apply`, `status`, the log and golden files.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


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
            return f"{self.kind} {self.namespace}/{self.name}"
        return f"{self.kind} {self.name}"


@dataclass(frozen=True, order=True)
class Diagnostic:
    object: ObjectRef
    field: str
    code: str
    message: str
    severity: Severity = Severity.ERROR

    def __str__(self) -> str:
        where = f"{self.object}: {self.field}" if self.field else str(self.object)
        return f"{where}: {self.message}"

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
