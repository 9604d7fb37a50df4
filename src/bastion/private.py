"""Private key bytes as a type whose every printable form is redacted."""

from __future__ import annotations

REDACTED = "[redacted]"


class PrivateBytes:
    """Holds key material. `repr`, `str` and YAML dumps never show it; only `.reveal()` does, and
    only what checks a key and the data plane's builders call that."""

    __slots__ = ("_value",)

    def __init__(self, value: bytes) -> None:
        self._value = value

    def reveal(self) -> bytes:
        return self._value

    def __repr__(self) -> str:
        return f"PrivateBytes({REDACTED})"

    __str__ = __repr__

    def __len__(self) -> int:
        return len(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PrivateBytes) and other._value == self._value

    # Never a dictionary key: no cache may be keyed by key material.
    __hash__ = None  # type: ignore[assignment]
