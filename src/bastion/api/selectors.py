"""Kubernetes' label selectors (`-l`: `a=b`, `a!=b`, `a in (x,y)`, `a notin (x)`, `a`, `!a`)
and field selectors (`--field-selector metadata.name=x,status.phase!=Running`), parsed once and
matched against stored object bodies."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from bastion.errors import InputError

SET = re.compile(r"^([A-Za-z0-9./_-]+)\s+(in|notin)\s+\(([^)]*)\)$")
EQUALITY = re.compile(r"^([A-Za-z0-9./_-]+)\s*(==|=|!=)\s*([A-Za-z0-9._-]*)$")
EXISTS = re.compile(r"^(!?)\s*([A-Za-z0-9./_-]+)$")
FIELD = re.compile(r"^([A-Za-z0-9.]+)\s*(==|=|!=)\s*(.*)$")


@dataclass(frozen=True)
class _Label:
    key: str
    values: frozenset[str] | None  # None: the label need only exist (or not)
    negate: bool

    def __call__(self, labels: Mapping[str, str]) -> bool:
        if self.values is None:
            return (self.key in labels) != self.negate
        return (labels.get(self.key) in self.values) != self.negate


@dataclass(frozen=True)
class _Field:
    path: tuple[str, ...]
    value: str
    negate: bool

    def __call__(self, body: Mapping[str, Any]) -> bool:
        return (_field(body, self.path) == self.value) != self.negate


def _split(selector: str) -> list[str]:
    """Requirements are comma-separated; commas inside `( … )` belong to a set."""
    parts: list[str] = []
    depth, current = 0, ""
    for ch in selector:
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if ch == "," and depth == 0:
            parts.append(current.strip())
            current = ""
        else:
            current += ch
    parts.append(current.strip())
    return [p for p in parts if p]


def label_selector(selector: str) -> Callable[[Mapping[str, str]], bool]:
    """A predicate over an object's labels; every requirement must hold."""
    requirements: list[_Label] = []
    for part in _split(selector):
        if (match := SET.match(part)) is not None:
            values = frozenset(v.strip() for v in match.group(3).split(",") if v.strip())
            requirements.append(_Label(match.group(1), values, match.group(2) == "notin"))
        elif (match := EQUALITY.match(part)) is not None:
            requirements.append(_Label(match.group(1), frozenset({match.group(3)}),
                                       match.group(2) == "!="))
        elif (match := EXISTS.match(part)) is not None:
            requirements.append(_Label(match.group(2), None, match.group(1) == "!"))
        else:
            raise InputError(f"unable to parse requirement {part!r} of label selector "
                             f"{selector!r}")
    return lambda labels: all(r(labels) for r in requirements)


def field_selector(selector: str) -> Callable[[Mapping[str, Any]], bool]:
    """A predicate over an object's body: `path=value`, `path==value` or `path!=value`, the
    path in dotted form (`metadata.name`, `status.phase`)."""
    requirements: list[_Field] = []
    for part in _split(selector):
        match = FIELD.match(part)
        if match is None:
            raise InputError(f"invalid field selector {part!r}: expected path=value or "
                             "path!=value")
        requirements.append(_Field(tuple(match.group(1).split(".")), match.group(3),
                                   match.group(2) == "!="))
    return lambda body: all(r(body) for r in requirements)


def _field(body: Mapping[str, Any], path: tuple[str, ...]) -> str:
    value: Any = body
    for part in path:
        value = value.get(part) if isinstance(value, Mapping) else None
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
