"""A readable, stable and secret-free view of the IR, for `bastion translate --to ir` and the
golden files: certificates are described by subject and serial, private keys print as
`[redacted]`."""

from __future__ import annotations

import dataclasses
from enum import Enum
from typing import Any

from bastion.pem import describe_pem
from bastion.private import REDACTED, PrivateBytes


def ir_to_data(value: Any) -> Any:
    if isinstance(value, PrivateBytes):
        return REDACTED
    if isinstance(value, bytes):
        return describe_pem(value)
    if isinstance(value, Enum):
        return value.value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out = {}
        for f in dataclasses.fields(value):
            item = ir_to_data(getattr(value, f.name))
            if item not in (None, (), [], "", {}):
                out[f.name] = item
        return out
    if isinstance(value, (tuple, list)):
        return [ir_to_data(v) for v in value]
    return value
