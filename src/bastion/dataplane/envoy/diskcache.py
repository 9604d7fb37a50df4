"""The last configuration a gateway's Envoy accepted, kept on the gateway's disk, so that an
Envoy or agent restarted while no control plane can be reached serves it again at once instead
of coming back empty (Envoy alone keeps its configuration in memory only, envoy#16987).

It holds private keys: the file is written with mode 0600, in the agent's 0700 state
directory, atomically (a crash leaves the previous file whole), and is read back only if it
parses completely."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from types import MappingProxyType

from google.protobuf.message import DecodeError

from bastion.dataplane.envoy.snapshot import Resource, Snapshot, content_hash
from bastion.dataplane.envoy.upstream import MESSAGES
from bastion.filewrite import write_atomically

FILE_NAME = "last-config.json"
FORMAT = 1


def save(path: Path, snapshot: Snapshot) -> None:
    document = {"format": FORMAT, "generation": snapshot.generation, "resources": {
        type_url: {name: base64.b64encode(r.message.SerializeToString(deterministic=True))
                   .decode() for name, r in snapshot.of(type_url).items()}
        for type_url in MESSAGES}}
    write_atomically(path, json.dumps(document).encode())


def load(path: Path) -> Snapshot | None:
    """The snapshot saved at `path`; None if there is none, or it is not whole."""
    try:
        document = json.loads(path.read_text())
        if document.get("format") != FORMAT:
            return None
        resources = {}
        for type_url, kind in MESSAGES.items():
            held = {}
            for name, data in sorted(document["resources"].get(type_url, {}).items()):
                message = kind()
                message.ParseFromString(base64.b64decode(data, validate=True))
                held[name] = Resource(name, message, content_hash(message))
            resources[type_url] = MappingProxyType(held)
        return Snapshot(int(document.get("generation", 1)), MappingProxyType(resources))
    except (OSError, ValueError, KeyError, TypeError, AttributeError, DecodeError):
        return None
