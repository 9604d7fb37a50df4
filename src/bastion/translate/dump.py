"""Readable, stable and secret-free views of translation output, for `bastion translate` and
the golden files: certificates are described by subject and serial, private keys print as
`[redacted]`, and everything is sorted."""

from __future__ import annotations

import base64
import dataclasses
from enum import Enum
from typing import Any

from google.protobuf import json_format

from bastion.ir.secret import REDACTED, PrivateBytes
from bastion.translate.istio.credentials import load_certificates
from bastion.translate.xds.resources import (
    CLUSTER,
    ENDPOINT,
    LISTENER,
    ROUTE,
    SECRET,
    XdsResources,
)

TYPE_KEYS = {LISTENER: "listeners", ROUTE: "routes", CLUSTER: "clusters",
             ENDPOINT: "endpoints", SECRET: "secrets"}


def describe_pem(data: bytes) -> str:
    if b"PRIVATE KEY" in data:
        return REDACTED
    if b"X509 CRL" in data:
        return "[crl]"
    if b"CERTIFICATE" in data:
        try:
            certs = load_certificates(data)
        except ValueError:
            return "[unparsable certificate]"
        return "[" + "; ".join(
            f"{c.subject.rfc4514_string()} serial={c.serial_number}" for c in certs) + "]"
    return f"[{len(data)} bytes]"


def _scrub(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: (describe_pem(base64.b64decode(v)) if k == "inlineBytes" and isinstance(v, str)
                    else _scrub(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    return value


def xds_to_data(xds: XdsResources) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for type_url, key in TYPE_KEYS.items():
        resources = xds.of(type_url)
        out[key] = [_scrub(json_format.MessageToDict(resources[name]))
                    for name in sorted(resources)]
    return out


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
