"""Session-ticket keys: rotated on schedule with the previous ones kept behind the new one, and
derived per gateway group, so replicas of a group share them and other groups do not."""

from __future__ import annotations

from pathlib import Path

from bastion.api.admission import admit
from bastion.build import build
from bastion.dataplane.envoy.driver import render_checked
from bastion.dataplane.envoy.resources import SECRET
from bastion.services.session_tickets import KEEP, KEY, TicketKeyRotator
from bastion.store import SqliteStore
from bastion.translate.istio import Options
from bastion.translate.istio.tickets import ticket_keys
from tests.unit.build.test_build import DEFAULT, EDGE, put, world


def secrets_of(store: SqliteStore) -> dict:
    verdict = admit(store.get(KEY).body, "default")  # type: ignore[union-attr]
    return {("bastion-system", "bastion-session-ticket-keys"): verdict.model}


def test_rotation_puts_a_new_key_first_and_keeps_the_previous(tmp_path: Path) -> None:
    now = [1_000_000.0]
    store = SqliteStore(tmp_path / "s.db")
    rotator = TicketKeyRotator(store, interval_s=3600, clock=lambda: now[0])
    assert rotator.rotate_if_due()  # none yet: made at once
    first = ticket_keys(secrets_of(store), DEFAULT)
    assert first is not None and len(first.keys) == 1 and len(first.keys[0]) == 80
    assert not rotator.rotate_if_due() and rotator.due_in() == 3600
    now[0] += 3600
    assert rotator.rotate_if_due()
    second = ticket_keys(secrets_of(store), DEFAULT)
    assert second is not None and second.keys[1:] == first.keys  # the old one still opens
    for _ in range(5):
        now[0] += 3600
        rotator.rotate_if_due()
    assert len(ticket_keys(secrets_of(store), DEFAULT).keys) == KEEP  # type: ignore[union-attr]
    assert "PrivateBytes([redacted])" in repr(second.keys)


def test_each_group_derives_its_own_keys(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.db")
    TicketKeyRotator(store).rotate_if_due()
    secrets = secrets_of(store)
    mine, again = ticket_keys(secrets, DEFAULT), ticket_keys(secrets, DEFAULT)
    other = ticket_keys(secrets, EDGE)
    assert mine == again and mine is not None and other is not None
    assert {k.reveal() for k in mine.keys}.isdisjoint(k.reveal() for k in other.keys)
    assert ticket_keys({}, DEFAULT) is None


def test_a_rotation_changes_one_credential_and_matches_a_full_build(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.db")
    rotator = TicketKeyRotator(store, interval_s=0)
    rotator.rotate_if_due()
    inputs, _ = world()
    body = store.get(KEY).body  # type: ignore[union-attr]
    put(inputs, body, 20)
    first = build(None, inputs, 20, [DEFAULT, EDGE], Options())
    keys = first.gateways[DEFAULT].ir.config.ticket_keys
    assert keys is not None
    servers = [s for lst in first.gateways[DEFAULT].ir.config.listeners for s in lst.servers]
    assert all(s.tls.ticket_keys == keys.name for s in servers if s.tls is not None)
    rotator.rotate_if_due()
    changed = put(inputs, store.get(KEY).body, 21)  # type: ignore[union-attr]
    second = build(first, inputs, 21, [DEFAULT, EDGE], Options(), {changed})
    gateway = second.gateways[DEFAULT]
    assert gateway.delta is not None and gateway.delta.credentials == {keys.name}
    whole = build(None, inputs, 21, [DEFAULT, EDGE], Options())
    assert gateway.ir.config == whole.gateways[DEFAULT].ir.config
    # Rendered, the group's secret holds its keys and every TLS chain names it.
    snapshot = render_checked(whole.gateways[DEFAULT])
    secret = snapshot.of(SECRET)[keys.name].message
    assert len(secret.session_ticket_keys.keys) == 2  # type: ignore[attr-defined]
    assert (SECRET, keys.name) in snapshot.wanted()
