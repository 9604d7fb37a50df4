from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.harness import Backend, Bastion

pytestmark = pytest.mark.e2e


@pytest.fixture(autouse=True)
def _require_tools() -> None:
    for tool in ("curl", "openssl"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is required for end-to-end tests (.ci/run installs it)")


def _running(instance: Bastion | Backend) -> Iterator[Any]:
    try:
        yield instance
    finally:
        instance.stop()


def _started(bastion: Bastion) -> Bastion:
    bastion.start()
    return bastion


@pytest.fixture
def bastion(tmp_path: Path) -> Iterator[Bastion]:
    yield from _running(_started(Bastion(tmp_path)))


@pytest.fixture
def patient_bastion(tmp_path: Path) -> Iterator[Bastion]:
    """For tests that delete and re-create a credential while other tests load both cores: the
    CLI's `create` can then land more than the default 1 s grace after its `delete`. A longer
    grace keeps these tests about rotation; the grace period itself is tested on its own."""
    yield from _running(_started(Bastion(tmp_path, serve_args=("--secret-grace", "10"))))


@pytest.fixture
def httpbin(tmp_path: Path) -> Iterator[Backend]:
    yield from _running(Backend("httpbin", tmp_path))


@pytest.fixture
def helloworld(tmp_path: Path) -> Iterator[Backend]:
    yield from _running(Backend("helloworld", tmp_path))
