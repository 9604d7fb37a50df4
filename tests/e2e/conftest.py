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
def quick_grace_bastion(tmp_path: Path) -> Iterator[Bastion]:
    """A gateway whose deleted credentials are withdrawn 2 s after the delete, for tests of
    what happens after the grace period (the default is 10 s)."""
    yield from _running(_started(Bastion(tmp_path, serve_args=("--secret-grace", "2"))))


@pytest.fixture
def httpbin(tmp_path: Path) -> Iterator[Backend]:
    yield from _running(Backend("httpbin", tmp_path))


@pytest.fixture
def helloworld(tmp_path: Path) -> Iterator[Backend]:
    yield from _running(Backend("helloworld", tmp_path))
