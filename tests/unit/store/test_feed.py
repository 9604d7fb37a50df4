"""The store's change feed: subscribers hear of every committed batch, with each object before
and after; writing an equal object is not a change and is not heard."""

from __future__ import annotations

from pathlib import Path

from bastion.store import Change, SqliteStore, StoreKey

KEY = StoreKey("", "Secret", "istio-system", "a")
OTHER = StoreKey("", "Service", "default", "s")


def test_feed_reports_creates_updates_and_deletes(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.db")
    heard: list[list[Change]] = []
    store.subscribe(heard.append)
    store.apply([(KEY, {"kind": "Secret", "metadata": {"name": "a"}, "data": {"k": "MQ=="}}),
                 (OTHER, {"kind": "Service", "metadata": {"name": "s"}})])
    assert [(c.key, c.before, c.after is not None) for c in heard[0]] == [
        (KEY, None, True), (OTHER, None, True)]
    store.apply([(KEY, {"kind": "Secret", "metadata": {"name": "a"}, "data": {"k": "Mg=="}})])
    update = heard[1][0]
    assert update.before is not None and update.after is not None
    assert update.before.body["data"] == {"k": "MQ=="}
    assert update.after.body["data"] == {"k": "Mg=="}
    assert update.after.revision == store.revision == 3
    store.delete([KEY])
    assert [(c.key, c.after) for c in heard[2]] == [(KEY, None)]
    assert heard[2][0].before is not None and heard[2][0].before.revision == 3


def test_equal_writes_are_not_heard(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.db")
    body = {"kind": "Service", "metadata": {"name": "s"}, "spec": {"ports": []}}
    store.apply([(OTHER, body)])
    heard: list[list[Change]] = []
    store.subscribe(heard.append)
    revision = store.revision
    # The server-assigned fields differ; what the user controls does not.
    stored = store.get(OTHER)
    assert stored is not None
    store.apply([(OTHER, stored.body)])
    store.apply([(OTHER, body)])
    store.delete([StoreKey("", "Service", "default", "missing")])
    assert heard == [] and store.revision == revision
