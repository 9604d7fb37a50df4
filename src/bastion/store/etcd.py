"""The shared store: etcd v3, for several control planes that each serve gateways.

Keys are `/bastion/objects/<group>/<kind>/<namespace>/<name>`, values the object's JSON; an
object's resourceVersion is its etcd mod_revision, as in Kubernetes. Every write is a
transaction guarded by the revisions this control plane holds, so a write made meanwhile by
another is never overwritten unseen: it is read, and the write is worked out again on it
(created, configured or unchanged, as with the embedded store). A batch is one transaction
while it fits etcd's limits (128 operations, 1.5 MiB); a larger one commits in several.

Every control plane holds every object in memory, filled by a list at one revision and kept by
a watch from the next: a broken watch resumes from the last event it delivered; a watch whose
revision was compacted lists again and reports the difference. Changes reach the subscribers on
the control plane's event loop, whoever made them.

aetcd (asyncio) runs on a thread of its own, so the store keeps the embedded store's
synchronous interface. Its channel is opened here: aetcd 1.0 cannot open a TLS channel, nor one
to several members.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar
from urllib.parse import quote, unquote

import aetcd
import grpc
from aetcd import exceptions as etcd_errors
from aetcd import rpc, watcher

from bastion.errors import Unavailable
from bastion.private import PrivateBytes
from bastion.store.base import ObjectStore
from bastion.store.keys import StoreKey
from bastion.store.leadership import Leadership
from bastion.store.objects import ApplyOutcome, Change, StoredObject, encode

log = logging.getLogger("bastion.store")
T = TypeVar("T")

PREFIX = b"/bastion/objects/"
LEADERS = b"/bastion/leaders/"
PRESENCE = b"/bastion/presence/"
MAX_TXN_OPS = 128  # etcd's default --max-txn-ops
MAX_TXN_BYTES = 1_400_000  # under etcd's default --max-request-bytes (1.5 MiB)
CALL_TIMEOUT_S = 5.0
RETRY_FOR_S = 20.0  # how long a call is retried while no member answers
CONFLICT_ROUNDS = 20
LIST_PAGE = 500
LEASE_TTL_S = 5
CHANNEL_OPTIONS = {
    "grpc.initial_reconnect_backoff_ms": 250,
    "grpc.max_reconnect_backoff_ms": 2000,
    "grpc.keepalive_time_ms": 5000,
    "grpc.keepalive_timeout_ms": 3000,
    "grpc.keepalive_permit_without_calls": 1,
    "grpc.lb_policy_name": "round_robin",
    "grpc.max_receive_message_length": 64 << 20,
}
# What a call may fail with while the cluster elects a leader or a member goes away.
TRANSIENT = (etcd_errors.ConnectionFailedError, etcd_errors.ConnectionTimeoutError,
             etcd_errors.InternalError)
TRANSIENT_CODES = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED,
                   grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL)


@dataclass(frozen=True)
class EtcdTls:
    """PEM bytes: the CA etcd's members are verified with, and this control plane's client
    certificate and key, if etcd asks for one (`--client-cert-auth`)."""

    ca: bytes
    cert: bytes | None = None
    key: PrivateBytes | None = field(default=None, repr=False)
    server_name: str | None = None  # the name to verify members by, if not their address

    def credentials(self) -> grpc.ChannelCredentials:
        return grpc.ssl_channel_credentials(
            self.ca, self.key.reveal() if self.key is not None else None, self.cert)


def key_path(key: StoreKey) -> bytes:
    return PREFIX + "/".join(quote(part, safe="") for part in
                             (key.group, key.kind, key.namespace, key.name)).encode()


def parse_key(raw: bytes) -> StoreKey | None:
    parts = raw[len(PREFIX):].decode().split("/")
    if not raw.startswith(PREFIX) or len(parts) != 4:
        return None
    return StoreKey(*(unquote(p) for p in parts))


def prefix_end(prefix: bytes) -> bytes:
    return prefix[:-1] + bytes([prefix[-1] + 1])


def target(endpoints: list[str]) -> str:
    """One gRPC target for the members: several are resolved to one `ipv4:` list, across
    which calls are balanced and a lost member is left out."""
    if len(endpoints) == 1:
        return endpoints[0]
    addresses = []
    for endpoint in endpoints:
        host, _, port = endpoint.rpartition(":")
        info = socket.getaddrinfo(host, int(port), socket.AF_INET, socket.SOCK_STREAM)
        addresses.append(f"{info[0][4][0]}:{port}")
    return "ipv4:" + ",".join(addresses)


class _Client(aetcd.Client):
    """aetcd's client on a channel opened here (TLS, several members)."""

    def __init__(self, endpoints: list[str], tls: EtcdTls | None) -> None:
        options = dict(CHANNEL_OPTIONS)
        if tls is not None and tls.server_name:
            options["grpc.ssl_target_name_override"] = tls.server_name
        super().__init__(timeout=CALL_TIMEOUT_S, options=options)
        self._target = target(endpoints)
        self._tls = tls

    async def connect(self) -> None:
        if self._connected.is_set():
            return
        options = list(self._options.items())
        if self._tls is not None:
            self.channel = grpc.aio.secure_channel(self._target, self._tls.credentials(),
                                                   options=options)
        else:
            self.channel = grpc.aio.insecure_channel(self._target, options=options)
        self.kvstub = rpc.KVStub(self.channel)
        self.leasestub = rpc.LeaseStub(self.channel)
        self._watcher = watcher.Watcher(rpc.WatchStub(self.channel), timeout=None)
        self._connected.set()


@dataclass
class _Txn:
    succeeded: bool
    revision: int
    current: dict[StoreKey, StoredObject | None] = field(default_factory=dict)


class EtcdStore(ObjectStore):
    shared = True

    def __init__(self, endpoints: list[str], tls: EtcdTls | None = None,
                 retry_for_s: float = RETRY_FOR_S) -> None:
        """Opened on the control plane's running event loop, where changes are delivered.
        A call no member answers is tried again for `retry_for_s`, then reported."""
        super().__init__()
        self.endpoints = endpoints
        self.retry_for_s = retry_for_s
        self._main = asyncio.get_running_loop()
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="etcd", daemon=True)
        self._thread.start()
        self._client = _Client(endpoints, tls)
        self._closing = False
        self._pending: list[tuple[bool, StoreKey, StoredObject | None, int]] = []
        # This control plane's own deletes, by revision, until the watch has passed them: an
        # older event arriving late must not bring the object back.
        self._tombstones: dict[StoreKey, int] = {}
        self._flush_scheduled = False
        self.relists = 0
        revision, objects = self._call(self._list)
        self._objects.update(objects)
        self.revision = revision
        self._watching = asyncio.run_coroutine_threadsafe(self._watch(revision + 1), self._loop)
        self._campaigns: list[concurrent.futures.Future[None]] = []
        self._presence: dict[str, bytes] = {}  # what this control plane announces, by name
        self._presence_changed = asyncio.Event()  # on the etcd thread's loop
        self._campaigns.append(asyncio.run_coroutine_threadsafe(self._present(), self._loop))

    def close(self) -> None:
        self._closing = True
        for future in (self._watching, *self._campaigns):
            future.cancel()
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(self._client.close(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)

    # -- calls on the etcd thread -----------------------------------------------------------

    def _call(self, make: Callable[[], Coroutine[Any, Any, T]]) -> T:
        return asyncio.run_coroutine_threadsafe(
            self._retrying(make), self._loop).result(self.retry_for_s + CALL_TIMEOUT_S + 5)

    async def _retrying(self, make: Callable[[], Coroutine[Any, Any, T]]) -> T:
        """`make()` awaited, and made again after a transient failure. Only idempotent calls
        come here: reads, and transactions guarded by revisions."""
        deadline = time.monotonic() + self.retry_for_s
        delay = 0.1
        while True:
            try:
                return await make()
            except Exception as exc:
                if not _transient(exc):
                    raise
                if time.monotonic() > deadline:
                    raise Unavailable(f"etcd at {','.join(self.endpoints)} does not answer: "
                                      f"{_reason(exc)}") from None
                log.debug("etcd call failed (%s); retrying", _reason(exc))
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)

    async def _list(self) -> tuple[int, dict[StoreKey, StoredObject]]:
        """Every object, read at one revision (the first page's), in pages."""
        await self._client.connect()
        objects: dict[StoreKey, StoredObject] = {}
        revision, start, end = 0, PREFIX, prefix_end(PREFIX)
        while True:
            answer = await self._client.kvstub.Range(rpc.RangeRequest(
                key=start, range_end=end, limit=LIST_PAGE, revision=revision),
                timeout=CALL_TIMEOUT_S)
            revision = revision or answer.header.revision
            for kv in answer.kvs:
                key = parse_key(kv.key)
                if key is not None:
                    objects[key] = StoredObject.of(key, kv.mod_revision, json.loads(kv.value))
            if not answer.more or not answer.kvs:
                return revision, objects
            start = answer.kvs[-1].key + b"\0"

    async def _txn(self, puts: dict[StoreKey, str], deletes: tuple[StoreKey, ...],
                   expected: dict[StoreKey, int], lease: int = 0) -> _Txn:
        await self._client.connect()
        compare = []
        for key, revision in expected.items():
            if revision:
                compare.append(rpc.Compare(key=key_path(key), target=rpc.Compare.MOD,
                                           result=rpc.Compare.EQUAL, mod_revision=revision))
            else:
                compare.append(rpc.Compare(key=key_path(key), target=rpc.Compare.CREATE,
                                           result=rpc.Compare.EQUAL, create_revision=0))
        success = [rpc.RequestOp(request_put=rpc.PutRequest(
            key=key_path(k), value=v.encode(), lease=lease)) for k, v in puts.items()]
        success += [rpc.RequestOp(request_delete_range=rpc.DeleteRangeRequest(key=key_path(k)))
                    for k in deletes]
        failure = [rpc.RequestOp(request_range=rpc.RangeRequest(key=key_path(k)))
                   for k in expected]
        answer = await self._client.kvstub.Txn(
            rpc.TxnRequest(compare=compare, success=success, failure=failure),
            timeout=CALL_TIMEOUT_S)
        if answer.succeeded:
            return _Txn(True, answer.header.revision)
        current: dict[StoreKey, StoredObject | None] = dict.fromkeys(expected)
        for response in answer.responses:
            for kv in response.response_range.kvs:
                found = parse_key(kv.key)
                if found is not None:
                    current[found] = StoredObject.of(found, kv.mod_revision,
                                                     json.loads(kv.value))
        return _Txn(False, answer.header.revision, current)

    # -- writes -----------------------------------------------------------------------------

    def apply(self, items: Iterable[tuple[StoreKey, dict[str, Any]]]) -> list[ApplyOutcome]:
        items = list(items)
        with self._lock:
            for _ in range(CONFLICT_ROUNDS):
                outcomes, staged = self._prepare(items)
                if self._write({k: encode(b) for k, b in staged.items()}, ()):
                    return outcomes
        raise Unavailable("etcd: the objects kept changing under this write; try again")

    def delete(self, keys: Iterable[StoreKey]) -> list[StoredObject]:
        keys = list(dict.fromkeys(keys))
        with self._lock:
            for _ in range(CONFLICT_ROUNDS):
                gone = [self._objects[k] for k in keys if k in self._objects]
                if self._write({}, tuple(o.key for o in gone)):
                    return gone
        raise Unavailable("etcd: the objects kept changing under this delete; try again")

    def create(self, key: StoreKey, body: dict[str, Any]) -> bool:
        with self._lock:
            _, staged = self._prepare([(key, body)])
            if key in self._objects:
                return False
            result = self._call(lambda: self._txn({key: encode(staged[key])}, (), {key: 0}))
            if not result.succeeded:
                self._absorb(result)
                return False
            self._commit_local([StoredObject.of(key, result.revision, staged[key])], (),
                               result.revision)
            return True

    def _write(self, puts: dict[StoreKey, str], deletes: tuple[StoreKey, ...]) -> bool:
        """Commit, in as few transactions as etcd takes; False if another writer got there
        first (what it wrote is now held, and the caller works its write out again)."""
        for chunk_puts, chunk_deletes in _chunks(puts, deletes):
            expected = {k: (self._objects[k].revision if k in self._objects else 0)
                        for k in (*chunk_puts, *chunk_deletes)}
            result = self._call(partial(self._txn, chunk_puts, chunk_deletes, expected))
            if not result.succeeded:
                self._absorb(result)
                return False
            upserts = [StoredObject(k, result.revision, _versioned(v, result.revision))
                       for k, v in chunk_puts.items()]
            self._tombstones.update(dict.fromkeys(chunk_deletes, result.revision))
            self._commit_local(upserts, chunk_deletes, result.revision)
        return True

    def _absorb(self, result: _Txn) -> None:
        """Hold what another writer stored (or deleted), as its watch event will say too."""
        for key, obj in result.current.items():
            self._receive(obj is not None, key, obj,
                          obj.revision if obj is not None else result.revision)
        self._flush()

    # -- the watch --------------------------------------------------------------------------

    async def _watch(self, start: int) -> None:
        while not self._closing:
            try:
                await self._client.connect()
                events = await self._client.watch_prefix(PREFIX, start_revision=start)
                async for event in events:
                    key = parse_key(event.kv.key)
                    start = event.kv.mod_revision + 1
                    if key is None:
                        continue
                    put = event.kind == "PUT"
                    obj = (StoredObject.of(key, event.kv.mod_revision, json.loads(event.kv.value))
                           if put else None)
                    self._main.call_soon_threadsafe(self._receive, put, key, obj,
                                                    event.kv.mod_revision)
            except etcd_errors.RevisionCompactedError as exc:
                log.warning("etcd compacted revision %d before it was watched: listing again",
                            exc.compacted_revision)
                revision, objects = await self._retrying(self._list)
                self._main.call_soon_threadsafe(self._replace_all, revision, objects)
                start = revision + 1
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self._closing:
                    return
                log.info("etcd watch interrupted (%s); resuming from revision %d",
                         _reason(exc), start)
                await asyncio.sleep(0.5)

    def _receive(self, put: bool, key: StoreKey, obj: StoredObject | None,
                 revision: int) -> None:
        """One event, on the main loop; the changes of the events that came together are
        told as one batch."""
        self._pending.append((put, key, obj, revision))
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._main.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        pending, self._pending = self._pending, []
        changes: dict[StoreKey, Change] = {}
        for put, key, obj, revision in pending:
            held = self._objects.get(key)
            if held is not None and held.revision >= revision:
                continue  # this control plane's own write, already held, or older
            gone_at = self._tombstones.get(key)
            if gone_at is not None:
                if revision <= gone_at:
                    continue  # from before this control plane deleted it
                del self._tombstones[key]
            if put and obj is not None:
                self._objects[key] = obj
            elif held is not None:
                del self._objects[key]
            else:
                continue
            first = changes[key].before if key in changes else held
            changes[key] = Change(key, first, obj if put else None)
            self.revision = max(self.revision, revision)
        if changes:
            self._publish(list(changes.values()))

    def _replace_all(self, revision: int, objects: dict[StoreKey, StoredObject]) -> None:
        """The store as listed at `revision`; what this control plane wrote since is kept (the
        watch, resumed after `revision`, tells it again)."""
        self.relists += 1
        objects = dict(objects)
        for key, held in self._objects.items():
            if held.revision > revision:
                objects[key] = held
        for key, gone_at in self._tombstones.items():
            if gone_at > revision:
                objects.pop(key, None)
        changes = [Change(k, self._objects.get(k), o) for k, o in objects.items()
                   if self._objects.get(k) != o]
        changes += [Change(k, o, None) for k, o in self._objects.items() if k not in objects]
        self._objects = dict(objects)
        self.revision = max(self.revision, revision)
        if changes:
            self._publish(changes)

    # -- presence ---------------------------------------------------------------------------

    def announce(self, name: str, value: dict[str, Any]) -> None:
        self._presence[name] = encode(value).encode()
        self._loop.call_soon_threadsafe(self._presence_changed.set)

    def presences(self) -> dict[str, dict[str, Any]]:
        async def read() -> dict[str, dict[str, Any]]:
            await self._client.connect()
            answer = await self._client.kvstub.Range(rpc.RangeRequest(
                key=PRESENCE, range_end=prefix_end(PRESENCE)), timeout=CALL_TIMEOUT_S)
            return {kv.key[len(PRESENCE):].decode(): json.loads(kv.value) for kv in answer.kvs}

        return self._call(read)

    async def _present(self) -> None:
        """Keep this control plane's announcements under a lease of its own, written when
        they change and again whenever the lease had to be granted anew."""
        while not self._closing:
            try:
                await self._client.connect()
                lease = await self._client.lease(LEASE_TTL_S)
                written: dict[str, bytes] = {}
                while True:
                    for name, value in list(self._presence.items()):
                        if written.get(name) != value:
                            await self._client.kvstub.Put(rpc.PutRequest(
                                key=PRESENCE + name.encode(), value=value, lease=lease.id),
                                timeout=CALL_TIMEOUT_S)
                            written[name] = value
                    self._presence_changed.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._presence_changed.wait(), LEASE_TTL_S / 3)
                    reply = await asyncio.wait_for(lease.refresh(), LEASE_TTL_S / 3)
                    if reply is None or reply.TTL <= 0:
                        break
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.info("presence: %s", _reason(exc))
                await asyncio.sleep(LEASE_TTL_S / 3)

    # -- leadership -------------------------------------------------------------------------

    def leadership(self, task: str) -> Leadership:
        """Led by whoever holds the key `/bastion/leaders/<task>` on a lease of a few
        seconds, kept alive while this control plane runs; when it dies, the lease ends and
        another campaigns."""
        held = Leadership(task)
        identity = f"{socket.gethostname()}:{id(self):x}"
        self._campaigns.append(asyncio.run_coroutine_threadsafe(
            self._campaign(held, identity), self._loop))
        return held

    async def _campaign(self, held: Leadership, identity: str) -> None:
        key = LEADERS + held.task.encode()
        while not self._closing:
            try:
                await self._client.connect()
                lease = await self._client.lease(LEASE_TTL_S)
                answer = await self._client.kvstub.Txn(rpc.TxnRequest(
                    compare=[rpc.Compare(key=key, target=rpc.Compare.CREATE,
                                         result=rpc.Compare.EQUAL, create_revision=0)],
                    success=[rpc.RequestOp(request_put=rpc.PutRequest(
                        key=key, value=identity.encode(), lease=lease.id))]),
                    timeout=CALL_TIMEOUT_S)
                if not answer.succeeded:
                    with contextlib.suppress(Exception):
                        await lease.revoke()
                    await asyncio.sleep(LEASE_TTL_S / 3)
                    continue
                self._main.call_soon_threadsafe(held._set, True)
                try:
                    while True:
                        await asyncio.sleep(LEASE_TTL_S / 3)
                        # Bounded, so the lead is given up before the lease can have ended
                        # (the last keep-alive is at most two thirds of the TTL old).
                        reply = await asyncio.wait_for(lease.refresh(), LEASE_TTL_S / 3)
                        if reply is None or reply.TTL <= 0:
                            break
                finally:
                    self._main.call_soon_threadsafe(held._set, False)
                    with contextlib.suppress(Exception):
                        await lease.revoke()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.info("leadership of %s: %s", held.task, _reason(exc))
                await asyncio.sleep(LEASE_TTL_S / 3)


def _versioned(text: str, revision: int) -> str:
    body = json.loads(text)
    return encode({**body, "metadata": {**body.get("metadata", {}),
                                        "resourceVersion": str(revision)}})


def _chunks(puts: dict[StoreKey, str], deletes: tuple[StoreKey, ...]
            ) -> list[tuple[dict[StoreKey, str], tuple[StoreKey, ...]]]:
    out: list[tuple[dict[StoreKey, str], tuple[StoreKey, ...]]] = []
    current: dict[StoreKey, str] = {}
    size = 0
    for key, text in puts.items():
        if current and (len(current) >= MAX_TXN_OPS or size + len(text) > MAX_TXN_BYTES):
            out.append((current, ()))
            current, size = {}, 0
        current[key] = text
        size += len(text)
    if current:
        out.append((current, ()))
    for start in range(0, len(deletes), MAX_TXN_OPS):
        out.append(({}, deletes[start:start + MAX_TXN_OPS]))
    return out


def _transient(exc: BaseException) -> bool:
    if isinstance(exc, TRANSIENT):
        return True
    return isinstance(exc, grpc.aio.AioRpcError) and exc.code() in TRANSIENT_CODES


def _reason(exc: BaseException) -> str:
    if isinstance(exc, grpc.aio.AioRpcError):
        return f"{exc.code().name}: {exc.details()}"
    return f"{type(exc).__name__}: {exc}"
