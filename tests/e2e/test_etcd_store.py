"""The etcd store against a real three-member etcd: the embedded store's semantics, changes by
one control plane heard by another, writes that never overwrite one made meanwhile, a member
killed without losing writes or watches, a re-list after compaction, one leader per task."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from bastion.errors import InputError
from bastion.store import ApplyOutcome, Change, StoreKey
from bastion.store.etcd import EtcdStore
from bastion.store.limits import MAX_OBJECT_BYTES
from tests.etcd import EtcdCluster, etcd_cluster

KEY = StoreKey("", "Secret", "istio-system", "a")
OTHER = StoreKey("networking.istio.io", "Gateway", "default", "gw")


def body(value: str, name: str = "a") -> dict:
    return {"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": name, "namespace": "istio-system"}, "data": {"k": value}}


async def until(check: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        await asyncio.sleep(0.05)


def run(tmp_path: Path, scenario: Callable[[EtcdCluster], Awaitable[None]]) -> None:
    with etcd_cluster(tmp_path) as cluster:
        asyncio.run(scenario(cluster))


def test_the_embedded_stores_semantics(tmp_path: Path) -> None:
    async def scenario(cluster: EtcdCluster) -> None:
        store = EtcdStore(cluster.endpoints)
        try:
            assert store.apply([(KEY, body("MQ=="))]) == [ApplyOutcome.CREATED]
            first = store.get(KEY)
            assert first is not None and first.body["metadata"]["resourceVersion"] == str(
                first.revision) and first.revision == store.revision
            uid = first.body["metadata"]["uid"]
            assert store.apply([(KEY, body("MQ=="))]) == [ApplyOutcome.UNCHANGED]
            assert store.revision == first.revision  # an equal write changes nothing
            assert store.apply([(KEY, body("Mg=="))]) == [ApplyOutcome.CONFIGURED]
            second = store.get(KEY)
            assert second is not None and second.revision > first.revision
            assert second.body["metadata"]["uid"] == uid
            with pytest.raises(InputError, match=r"Secret istio-system/big.*1\.5 MiB"):
                store.apply([(StoreKey("", "Secret", "istio-system", "big"),
                              body("x" * (MAX_OBJECT_BYTES + 1), "big"))])
            assert not store.create(KEY, body("Mw=="))  # present: not replaced
            assert store.create(OTHER, {"kind": "Gateway", "metadata": {"name": "gw"}})
            stale = store.get(KEY)
            assert [o.key for o in store.delete([KEY, KEY])] == [KEY]
            assert store.get(KEY) is None and store.delete([KEY]) == []
            # An event from before this store's own delete, arriving late, changes nothing.
            assert stale is not None
            store._receive(True, KEY, stale, stale.revision)
            store._flush()
            assert store.get(KEY) is None
            # What is stored survives the store: a new one lists it back.
            store.close()
            store = EtcdStore(cluster.endpoints)
            assert [o.key for o in store.all()] == [OTHER]
            stored = cluster.etcdctl("get", "--prefix", "--keys-only", "/bastion/objects/")
            assert stored.stdout.split() == ["/bastion/objects/networking.istio.io/Gateway/"
                                             "default/gw"]
        finally:
            store.close()

    run(tmp_path, scenario)


def test_two_control_planes_hear_each_other_and_never_overwrite_unseen(tmp_path: Path) -> None:
    async def scenario(cluster: EtcdCluster) -> None:
        a, b = EtcdStore(cluster.endpoints), EtcdStore(cluster.endpoints)
        heard: list[list[Change]] = []
        b.subscribe(heard.append)
        try:
            a.apply([(KEY, body("MQ=="))])
            await until(lambda: b.get(KEY) is not None)
            assert b.get(KEY) == a.get(KEY)
            assert [(c.key, c.before) for c in heard[-1]] == [(KEY, None)]
            # b writes before it has heard a's update: the guarded write fails, b reads
            # a's, and works its own out again on it.
            b._watching.cancel()  # b hears nothing more for now
            await asyncio.sleep(0.2)
            a.apply([(KEY, {**body("Mg=="), "metadata": {
                **body("")["metadata"], "labels": {"by": "a"}}})])
            assert b.apply([(KEY, body("Mw=="))]) == [ApplyOutcome.CONFIGURED]
            await until(lambda: a.get(KEY) is not None and a.get(KEY).body["data"] == {
                "k": "Mw=="})
            assert a.get(KEY) == b.get(KEY)
            assert heard[-1][0].before is not None and heard[-1][0].before.body["data"] == {
                "k": "Mg=="}  # b was told of a's write before its own
        finally:
            a.close()
            b.close()

    run(tmp_path, scenario)


def test_a_killed_member_loses_no_write_or_watch(tmp_path: Path) -> None:
    async def scenario(cluster: EtcdCluster) -> None:
        a = EtcdStore(cluster.endpoints)
        b = EtcdStore(cluster.endpoints)
        try:
            for i in range(3):
                cluster.kill_member(i)
                for n in range(5):
                    key = StoreKey("", "Secret", "istio-system", f"k{i}-{n}")
                    assert a.apply([(key, body("MQ==", key.name))]) == [ApplyOutcome.CREATED]
                cluster.start_member(i)
                cluster.wait_healthy()
            await until(lambda: len(b.all()) == 15)
            assert {o.key: o.revision for o in a.all()} == {o.key: o.revision for o in b.all()}
        finally:
            a.close()
            b.close()

    run(tmp_path, scenario)


def test_a_watch_behind_a_compaction_lists_again_and_reports_the_difference(
        tmp_path: Path) -> None:
    async def scenario(cluster: EtcdCluster) -> None:
        a, b = EtcdStore(cluster.endpoints), EtcdStore(cluster.endpoints)
        heard: list[list[Change]] = []
        b.subscribe(heard.append)
        try:
            a.apply([(KEY, body("MQ==")), (OTHER, {"kind": "Gateway",
                                                   "metadata": {"name": "gw"}})])
            await until(lambda: len(b.all()) == 2)
            behind = b.revision
            b._watching.cancel()
            await asyncio.sleep(0.2)
            a.apply([(KEY, body("Mg=="))])
            a.delete([OTHER])
            third = StoreKey("", "Secret", "istio-system", "c")
            a.apply([(third, body("Mw==", "c"))])
            cluster.compact(cluster.revision())
            b._watching = asyncio.run_coroutine_threadsafe(b._watch(behind + 1), b._loop)
            await until(lambda: b.relists == 1 and b.get(third) is not None)
            assert {o.key: o.text for o in b.all()} == {o.key: o.text for o in a.all()}
            told = {c.key: (c.before is not None, c.after is not None) for c in heard[-1]}
            assert told == {KEY: (True, True), OTHER: (True, False), third: (False, True)}
        finally:
            a.close()
            b.close()

    run(tmp_path, scenario)


def test_one_leader_per_task_and_a_handover_when_it_goes(tmp_path: Path) -> None:
    async def scenario(cluster: EtcdCluster) -> None:
        a, b = EtcdStore(cluster.endpoints), EtcdStore(cluster.endpoints)
        try:
            la, lb = a.leadership("certificates"), b.leadership("certificates")
            await asyncio.wait_for(
                asyncio.wait({asyncio.ensure_future(la.acquired()),
                              asyncio.ensure_future(lb.acquired())},
                             return_when=asyncio.FIRST_COMPLETED), 15)
            await asyncio.sleep(3)  # several keep-alives: the lead holds, and is alone
            assert la.leading != lb.leading
            leader, follower = (a, lb) if la.leading else (b, la)
            leader.close()  # its lease is revoked (or, after a crash, expires)
            await asyncio.wait_for(follower.acquired(), 15)
            assert follower.leading
        finally:
            a.close()
            b.close()

    run(tmp_path, scenario)


def test_etcd_over_mutual_tls(tmp_path: Path) -> None:
    from bastion import pki
    from bastion.errors import Unavailable
    from bastion.private import PrivateBytes
    from bastion.store.etcd import EtcdTls

    tls = tmp_path / "tls"
    tls.mkdir()
    start = dt.datetime.now(dt.UTC)
    end = start + dt.timedelta(days=1)
    ca_key = pki.new_key()
    ca = pki.sign(pki.Request("etcd CA", not_before=start, not_after=end, is_ca=True,
                              usages=()), ca_key.public_key(), None, ca_key)
    (tls / "ca.crt").write_bytes(pki.cert_pem(ca))
    for name, request in (
            ("server", pki.Request("etcd", ip_addresses=("127.0.0.1",), not_before=start,
                                   not_after=end, usages=(*pki.DEFAULT_USAGES, "server auth"))),
            ("client", pki.Request("bastion", not_before=start, not_after=end,
                                   usages=(*pki.DEFAULT_USAGES, "client auth")))):
        key = pki.new_key()
        (tls / f"{name}.crt").write_bytes(pki.cert_pem(pki.sign(request, key.public_key(),
                                                                (ca, ca_key))))
        (tls / f"{name}.key").write_bytes(pki.key_pem(key, "PKCS8").reveal())

    async def scenario(cluster: EtcdCluster) -> None:
        secured = EtcdTls((tls / "ca.crt").read_bytes(), (tls / "client.crt").read_bytes(),
                          PrivateBytes((tls / "client.key").read_bytes()))
        store = EtcdStore(cluster.endpoints, secured)
        try:
            assert store.apply([(KEY, body("MQ=="))]) == [ApplyOutcome.CREATED]
            assert "PRIVATE" not in repr(secured)  # the key is never shown
        finally:
            store.close()
        with pytest.raises(Unavailable, match="does not answer"):  # no client certificate
            EtcdStore(cluster.endpoints, EtcdTls((tls / "ca.crt").read_bytes()),
                      retry_for_s=2)

    cluster = EtcdCluster(tmp_path, members=1, tls=tls)
    try:
        cluster.start()
        asyncio.run(scenario(cluster))
    finally:
        cluster.stop()
