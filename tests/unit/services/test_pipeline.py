"""The pipeline from store to data plane, with the real store and build and a data plane that
records what it is handed: writes reach it through the store's feed alone, a deleted Secret stays
in force for the grace period and is then withdrawn, and a failure inside bastion keeps the last
good configuration."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

from bastion.build import Build
from bastion.ir.workload import Workload
from bastion.services.pipeline import Pipeline, PipelineConfig
from bastion.store import SqliteStore
from tests.unit.build.test_build import gateway, secret

DEFAULT = Workload()


class RecordingDataPlane:
    def __init__(self) -> None:
        self.builds: list[Build] = []
        self.fail = False

    def publish(self, build: Build) -> list[str]:
        if self.fail:
            raise RuntimeError("boom")
        self.builds.append(build)
        return []

    def groups(self) -> set[Workload]:
        return set()

    def secrets(self) -> dict[str, str]:
        return {}


def credentials(build: Build) -> list[str]:
    return [c.name for c in build.gateways[DEFAULT].ir.config.tls_credentials]


async def settle() -> None:
    await asyncio.sleep(0.15)


def run(tmp_path: Path, grace: float, scenario: Any) -> None:
    async def main() -> None:
        store = SqliteStore(tmp_path / "s.db")
        dataplane = RecordingDataPlane()
        pipeline = Pipeline(store, dataplane, PipelineConfig(debounce_s=0.01,
                                                             secret_grace_s=grace))
        loop = asyncio.create_task(pipeline.run())
        try:
            await settle()
            await scenario(store, pipeline, dataplane)
        finally:
            loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await loop
    asyncio.run(main())


def keyed(raw: dict[str, Any]):  # type: ignore[no-untyped-def]
    from bastion.api.admission import admit

    verdict = admit(raw)
    return verdict.key, verdict.body  # type: ignore[union-attr]


def test_writes_reach_the_data_plane_through_the_feed(tmp_path: Path) -> None:
    async def scenario(store, pipeline, dataplane) -> None:  # type: ignore[no-untyped-def]
        store.apply([keyed(secret("a", 1, "a.example.com")),
                     keyed(gateway("gw", {"istio": "ingressgateway"}, "a.example.com", "a"))])
        await settle()
        assert credentials(dataplane.builds[-1]) == ["a"]
        assert dataplane.builds[-1].revision == store.revision

    run(tmp_path, 0, scenario)


def test_deleted_secret_stays_for_the_grace_then_goes(tmp_path: Path) -> None:
    async def scenario(store, pipeline, dataplane) -> None:  # type: ignore[no-untyped-def]
        key, body = keyed(secret("a", 1, "a.example.com"))
        store.apply([(key, body), keyed(gateway("gw", {"istio": "ingressgateway"},
                                                "a.example.com", "a"))])
        await settle()
        store.delete([key])
        await settle()
        assert credentials(dataplane.builds[-1]) == ["a"]
        assert pipeline.deleted_secrets() == {"istio-system/a": "deleted, withdrawn in 0 s"}
        assert pipeline.deleted_secret("istio-system", "a") is not None
        await asyncio.sleep(0.5)
        assert credentials(dataplane.builds[-1]) == []
        assert pipeline.deleted_secrets() == {}
        assert any("secret istio-system/a not found" in d.message
                   for d in pipeline.diagnostics)

    run(tmp_path, 0.4, scenario)


def test_created_again_within_the_grace_is_never_withdrawn(tmp_path: Path) -> None:
    async def scenario(store, pipeline, dataplane) -> None:  # type: ignore[no-untyped-def]
        key, body = keyed(secret("a", 1, "a.example.com"))
        store.apply([(key, body), keyed(gateway("gw", {"istio": "ingressgateway"},
                                                "a.example.com", "a"))])
        await settle()
        seen = len(dataplane.builds)
        store.delete([key])
        await asyncio.sleep(0.1)
        store.apply([keyed(secret("a", 2, "a.example.com"))])
        await asyncio.sleep(0.6)
        assert all(credentials(b) == ["a"] for b in dataplane.builds[seen:])
        serial = dataplane.builds[-1].gateways[DEFAULT].ir.config.tls_credentials[0]
        assert serial.summary is not None and serial.summary.serial == "2"

    run(tmp_path, 0.4, scenario)


def test_a_failure_inside_keeps_the_last_good_build(tmp_path: Path) -> None:
    async def scenario(store, pipeline, dataplane) -> None:  # type: ignore[no-untyped-def]
        store.apply([keyed(gateway("gw", {"istio": "ingressgateway"}, "a.example.com", "a"))])
        await settle()
        good = pipeline.build
        dataplane.fail = True
        store.apply([keyed(secret("a", 1, "a.example.com"))])
        await settle()
        assert pipeline.build is good
        assert pipeline.translate_error == "RuntimeError: boom"
        dataplane.fail = False
        pipeline.mark_dirty(set())
        await settle()
        assert pipeline.translate_error == "" and credentials(pipeline.build) == ["a"]

    run(tmp_path, 0, scenario)
