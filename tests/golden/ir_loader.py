"""Hand-written IR from YAML: each mapping becomes the frozen dataclass its field is typed as
(a union of dataclasses picks the one whose fields the mapping names), lists become tuples,
strings become enums, and `private_key` becomes `PrivateBytes`."""

from __future__ import annotations

import dataclasses
import types
import typing
from enum import Enum
from typing import Any, get_args, get_origin, get_type_hints

from bastion.private import PrivateBytes


def _fits(cls: type, data: dict[str, Any]) -> bool:
    names = {f.name for f in dataclasses.fields(cls)}
    required = {f.name for f in dataclasses.fields(cls)
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING}
    return set(data) <= names and required <= set(data)


def load(tp: Any, data: Any) -> Any:
    origin = get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in get_args(tp) if a is not type(None)]
        if data is None:
            return None
        if isinstance(data, dict):
            chosen = [a for a in options if dataclasses.is_dataclass(a) and _fits(a, data)]
            if len(chosen) != 1:
                raise ValueError(f"{sorted(data)} fits {len(chosen)} of {options}")
            return load(chosen[0], data)
        return load(options[0], data)
    if origin is tuple:
        args = get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(load(args[0], item) for item in data)
        return tuple(load(a, item) for a, item in zip(args, data, strict=True))
    if tp is PrivateBytes:
        return PrivateBytes(data)
    if tp is bytes:
        return data if isinstance(data, bytes) else data.encode()
    if isinstance(tp, type) and issubclass(tp, Enum):
        return tp(data)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        hints = get_type_hints(tp)
        unknown = set(data) - set(hints)
        if unknown:
            raise ValueError(f"{tp.__name__} has no field {sorted(unknown)}")
        return tp(**{name: load(hints[name], value) for name, value in data.items()})
    return data
