"""The file watcher: a certificate and key are published together once they match, a mismatch
is published (to be reported) only after a patience period, and a link leading out of the
allowed directories is not followed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bastion.api.admission import admit
from bastion.services import files as files_module
from bastion.services.files import FileWatcher, file_key
from bastion.translate.istio.resources import Resources
from tests import certs


def watcher_for(tmp_path: Path, cert: Path, key: Path) -> FileWatcher:
    gateway = admit({"apiVersion": "networking.istio.io/v1", "kind": "Gateway",
                     "metadata": {"name": "gw", "namespace": "istio-system"},
                     "spec": {"servers": [{
                         "port": {"number": 443, "name": "https", "protocol": "HTTPS"},
                         "hosts": ["a.example.com"],
                         "tls": {"mode": "SIMPLE", "serverCertificate": str(cert),
                                 "privateKey": str(key)}}]}}).model
    resources = Resources()
    resources.put(gateway)
    return FileWatcher(resources, (str(tmp_path),))


def test_pair_is_published_when_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    old, new = certs.leaf("a.example.com", 1), certs.leaf("a.example.com", 2)
    cert, key = certs.write(old, tmp_path, "tls")
    watcher = watcher_for(tmp_path, cert, key)
    staple = tmp_path / "tls.ocsp-staple"
    assert watcher.refresh() == {file_key(str(p)) for p in (cert, key, staple)}
    files = watcher.resources.files
    assert files[str(cert)].data.reveal() == old.cert  # type: ignore[union-attr]
    assert files[str(staple)].error == "no such file"

    cert.write_bytes(new.cert)  # the key still is the old one
    assert watcher.refresh() == set()
    assert files[str(cert)].data.reveal() == old.cert  # type: ignore[union-attr]
    key.write_bytes(new.key)
    os.utime(key, ns=(1, 1))  # a stamp of its own even within one clock tick
    assert watcher.refresh() == {file_key(str(cert)), file_key(str(key))}
    assert files[str(key)].data.reveal() == new.key  # type: ignore[union-attr]

    cert.write_bytes(old.cert)
    assert watcher.refresh() == set()  # the first look starts the patience
    monkeypatch.setattr(files_module, "PAIR_PATIENCE_S", 0.0)
    assert watcher.refresh() == {file_key(str(cert))}  # then the mismatch is published


def test_link_out_of_the_directory_is_not_followed(tmp_path: Path) -> None:
    inside, outside = tmp_path / "in", tmp_path / "out"
    inside.mkdir()
    outside.mkdir()
    cert, key = certs.write(certs.leaf("a.example.com", 1), outside, "tls")
    (inside / "tls.crt").symlink_to(cert)
    (inside / "tls.key").symlink_to(key)
    watcher = watcher_for(inside, inside / "tls.crt", inside / "tls.key")
    watcher.cert_dirs = (str(inside),)
    watcher.refresh()
    read = watcher.resources.files[str(inside / "tls.key")]
    assert read.data is None
    assert "outside the allowed directories" in read.error
    assert "PRIVATE KEY" not in repr(read)
