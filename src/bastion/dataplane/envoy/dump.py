"""A readable, stable and secret-free view of Envoy resources, for `bastion translate` and the
golden files: inline PEM is described (certificates by subject and serial, private keys as
`[redacted]`), and resources are sorted by name."""

from __future__ import annotations

import base64
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import Message

from bastion.dataplane.envoy.resources import CLUSTER, ENDPOINT, LISTENER, ROUTE, SECRET
from bastion.dataplane.envoy.snapshot import Snapshot
from bastion.pem import describe_pem

TYPE_KEYS = {LISTENER: "listeners", ROUTE: "routes", CLUSTER: "clusters",
             ENDPOINT: "endpoints", SECRET: "secrets"}


def _scrub(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: (describe_pem(base64.b64decode(v)) if k == "inlineBytes" and isinstance(v, str)
                    else _scrub(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    return value


def message_to_data(message: Message) -> Any:
    return _scrub(json_format.MessageToDict(message))


def snapshot_to_data(snapshot: Snapshot) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for type_url, key in TYPE_KEYS.items():
        resources = snapshot.of(type_url)
        out[key] = [message_to_data(resources[name].message) for name in sorted(resources)]
    return out
