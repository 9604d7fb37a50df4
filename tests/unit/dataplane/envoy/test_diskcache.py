"""The gateway's disk cache: what is saved loads back equal, with mode 0600; a file cut short,
of another format or not there loads as nothing (the gateway then waits for a control
plane instead of serving half a configuration)."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from bastion.dataplane.envoy import diskcache
from bastion.dataplane.envoy.resources import PUSH_ORDER
from tests.protocol.test_upstream import snapshots


def test_saved_loads_back_equal_and_private(tmp_path: Path) -> None:
    one, _, _ = snapshots()
    path = tmp_path / diskcache.FILE_NAME
    diskcache.save(path, one)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    loaded = diskcache.load(path)
    assert loaded is not None
    for type_url in PUSH_ORDER:
        assert {n: r.hash for n, r in loaded.of(type_url).items()} == {
            n: r.hash for n, r in one.of(type_url).items()}


def test_anything_but_a_whole_file_is_nothing(tmp_path: Path) -> None:
    one, _, _ = snapshots()
    path = tmp_path / diskcache.FILE_NAME
    assert diskcache.load(path) is None
    diskcache.save(path, one)
    whole = path.read_text()
    path.write_text(whole[: len(whole) // 2])
    assert diskcache.load(path) is None
    path.write_text(whole.replace('"format": 1', '"format": 99'))
    assert diskcache.load(path) is None
    document = json.loads(whole)
    first = next(t for t, held in document["resources"].items() if held)
    name = next(iter(document["resources"][first]))
    document["resources"][first][name] = "not base64!"
    path.write_text(json.dumps(document))
    assert diskcache.load(path) is None
