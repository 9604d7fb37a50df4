"""Instants as bastion writes them: ISO 8601 in UTC to the second, which compare as strings
(`2026-12-01T10:00:00Z`). The pure core only formats instants it is given; the clock is read by
the control plane and the data plane driver."""

from __future__ import annotations

from datetime import UTC, datetime

ISO_UTC = "%Y-%m-%dT%H:%M:%SZ"


def iso(instant: datetime) -> str:
    return instant.astimezone(UTC).strftime(ISO_UTC)


def iso_epoch(epoch: float) -> str:
    """An instant given in seconds since the epoch (`time.time()`)."""
    return iso(datetime.fromtimestamp(epoch, UTC))


def utc_now() -> str:
    return iso(datetime.now(UTC))


def parse_iso(instant: str) -> datetime:
    return datetime.strptime(instant, ISO_UTC).replace(tzinfo=UTC)


def seconds_until(instant: str) -> float:
    return (parse_iso(instant) - datetime.now(UTC)).total_seconds()
