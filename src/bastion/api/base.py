"""Shared model machinery: camelCase on the wire, snake_case in Python, frozen values.

API objects are pydantic dataclasses with `__slots__` rather than `BaseModel`s: the control plane
keeps the admitted model of every stored object, and at 10,000 hosts (30,000 objects, ten or more
nested values each) a `BaseModel`'s per-instance dict and field set cost about three times the
memory of a slotted instance.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import ConfigDict, Field, TypeAdapter
from pydantic.alias_generators import to_camel
from pydantic.dataclasses import dataclass

T = TypeVar("T")

_STRICT = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")
# Kubernetes core objects carry many fields bastion has no use for: they are ignored by the model
# (the store keeps the whole object as written).
_LENIENT = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


def _model(config: ConfigDict) -> Callable[[type[T]], type[T]]:
    def decorate(cls: type[T]) -> type[T]:
        made: type[T] = dataclass(config=config, frozen=True, slots=True, kw_only=True)(
            cls)  # type: ignore[assignment]
        return made
    return decorate


strict = _model(_STRICT)
"""Istio API objects: unknown fields are refused, as the CRD's structural schema does."""

lenient = _model(_LENIENT)


@functools.cache
def _adapter(cls: type[Any]) -> TypeAdapter[Any]:
    return TypeAdapter(cls)


def validate(cls: type[T], data: Any) -> T:
    """Build and check a model from wire data; raises pydantic's ValidationError."""
    result: T = _adapter(cls).validate_python(data)  # type: ignore[arg-type]
    return result


def dump(model: Any, **options: Any) -> Any:
    """A model back to plain data (options as for pydantic's `dump_python`)."""
    return _adapter(type(model)).dump_python(model, **options)  # type: ignore[arg-type]


@lenient
class ObjectMeta:
    name: str = Field(min_length=1, max_length=253)
    namespace: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    resource_version: str | None = None
    creation_timestamp: str | None = None
    uid: str | None = None


def with_fields(model: T, **changes: Any) -> T:
    """A copy of a model with some fields changed, checked like the model itself."""
    copy: T = dataclasses.replace(model, **changes)  # type: ignore[type-var]
    return copy
