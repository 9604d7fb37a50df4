from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.harness import Backend, Bastion

pytestmark = pytest.mark.e2e


@pytest.fixture(autouse=True)
def _require_tools() -> None:
    for tool in ("curl", "openssl"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is required for end-to-end tests (.ci/run installs it)")


@pytest.fixture
def bastion(tmp_path: Path) -> Iterator[Bastion]:
    instance = Bastion(tmp_path)
    instance.start()
    try:
        yield instance
    finally:
        instance.stop()


@pytest.fixture
def httpbin(tmp_path: Path) -> Iterator[Backend]:
    backend = Backend("httpbin", tmp_path)
    try:
        yield backend
    finally:
        backend.stop()


@pytest.fixture
def helloworld(tmp_path: Path) -> Iterator[Backend]:
    backend = Backend("helloworld", tmp_path)
    try:
        yield backend
    finally:
        backend.stop()
