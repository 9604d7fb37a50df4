"""Session-ticket keys shared by every gateway of a group, so that a client resumes its TLS
session on whichever replica a load balancer sends it to (Envoy alone makes its own keys per
process, and Envoy Gateway's replicas each keep theirs).

The control plane keeps a set of master keys in one Secret (`bastion-system/
bastion-session-ticket-keys`, newest first) and rotates it; each group's keys are derived from
them with HKDF and the group's identity, so a gateway of one group cannot open another group's
tickets."""

from __future__ import annotations

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from bastion.api import core
from bastion.ir.model import TicketKeys
from bastion.ir.workload import Workload
from bastion.private import PrivateBytes

NAMESPACE, NAME = "bastion-system", "bastion-session-ticket-keys"
ENTRY = "ticket.keys"  # the master keys, concatenated, newest first
CREDENTIAL = "bastion:session-ticket-keys"
MASTER_BYTES = 32
KEY_BYTES = 80  # what Envoy (BoringSSL) takes: name, HMAC secret and AES key


def ticket_keys(secrets: dict[tuple[str, str], core.Secret], workload: Workload
                ) -> TicketKeys | None:
    """The group's keys, or None when there are none (or none that can be read)."""
    secret = secrets.get((NAMESPACE, NAME))
    blob = secret.private_key(ENTRY) if secret is not None else None
    if blob is None or not len(blob) or len(blob) % MASTER_BYTES:
        return None
    raw = blob.reveal()
    info = b"bastion session tickets\0" + str(workload).encode()
    keys = tuple(
        PrivateBytes(HKDF(hashes.SHA256(), KEY_BYTES, salt=None, info=info)
                     .derive(raw[i:i + MASTER_BYTES]))
        for i in range(0, len(raw), MASTER_BYTES))
    return TicketKeys(CREDENTIAL, keys)
