"""Shared pydantic configuration: camelCase on the wire, snake_case in Python, frozen values."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel


class Strict(BaseModel):
    """Istio API objects: unknown fields are refused, as the CRD's structural schema does."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )


class Lenient(BaseModel):
    """Kubernetes core objects carry many fields bastion has no use for; they are kept, not read."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="allow", frozen=True
    )


class ObjectMeta(Lenient):
    name: str = Field(min_length=1, max_length=253)
    namespace: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    resource_version: str | None = None
    creation_timestamp: str | None = None
    uid: str | None = None

