"""Golden-file helpers: the dump views come from the package (`bastion translate` prints the
same); test cases name generated certificates with placeholders."""

from __future__ import annotations

import re

from bastion.dataplane.envoy.dump import snapshot_to_data
from bastion.translate.dump import ir_to_data

PLACEHOLDER = re.compile(r"^@(cert|key|ca|chain):(.+)$")

__all__ = ["PLACEHOLDER", "ir_to_data", "snapshot_to_data"]
