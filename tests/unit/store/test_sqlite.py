from __future__ import annotations

from pathlib import Path

from bastion.store import ApplyOutcome, SqliteStore
from bastion.store.keys import StoreKey

KEY = StoreKey("", "Secret", "istio-system", "a")


def body(value: str) -> dict:
    return {"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "a", "namespace": "istio-system"}, "data": {"k": value}}


def test_created_configured_unchanged_and_revisions(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.db")
    assert store.apply([(KEY, body("MQ=="))]) == [ApplyOutcome.CREATED]
    assert store.revision == 1
    uid = store.get(KEY).body["metadata"]["uid"]
    assert store.apply([(KEY, body("MQ=="))]) == [ApplyOutcome.UNCHANGED]
    assert store.revision == 1  # an equal write changes nothing
    assert store.apply([(KEY, body("Mg=="))]) == [ApplyOutcome.CONFIGURED]
    stored = store.get(KEY)
    assert stored.revision == 2 and stored.body["metadata"]["resourceVersion"] == "2"
    assert stored.body["metadata"]["uid"] == uid


def test_durable_across_reopen(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.db")
    store.apply([(KEY, body("MQ=="))])
    other = StoreKey("apps", "Deployment", "default", "d")
    store.apply([(other, {"kind": "Deployment", "metadata": {"name": "d"}})])
    store.close()
    again = SqliteStore(tmp_path / "s.db")
    assert again.revision == 2
    assert again.get(KEY).body["data"] == {"k": "MQ=="}
    assert [o.key for o in again.select(kind="Deployment")] == [other]


def test_delete_and_batch_atomicity(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.db")
    k2 = StoreKey("", "Secret", "istio-system", "b")
    assert store.apply([(KEY, body("MQ==")), (k2, body("Mg=="))]) == [
        ApplyOutcome.CREATED, ApplyOutcome.CREATED]
    assert store.revision == 2
    gone = store.delete([KEY, StoreKey("", "Secret", "x", "missing")])
    assert [o.key for o in gone] == [KEY]
    assert store.get(KEY) is None and store.revision == 3
    store.close()
    assert SqliteStore(tmp_path / "s.db").get(KEY) is None


def test_an_object_over_the_size_limit_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    from bastion.errors import InputError
    from bastion.store.limits import MAX_OBJECT_BYTES

    store = SqliteStore(tmp_path / "s.db")
    store.apply([(KEY, body("MQ=="))])
    other = StoreKey("", "Secret", "istio-system", "big")
    big = {**body("x" * (MAX_OBJECT_BYTES + 1)), "metadata": {"name": "big",
                                                              "namespace": "istio-system"}}
    try:
        store.apply([(KEY, body("Mg==")), (other, big)])
    except InputError as exc:
        assert "Secret istio-system/big" in str(exc) and "1.5 MiB" in str(exc)
    else:
        raise AssertionError("a 1.5 MiB+ object was stored")
    assert store.revision == 1 and store.get(other) is None  # the batch changed nothing
    assert store.get(KEY).body["data"] == {"k": "MQ=="}
    assert store.apply([(KEY, body("x" * (MAX_OBJECT_BYTES - 4096)))]) == [
        ApplyOutcome.CONFIGURED]
