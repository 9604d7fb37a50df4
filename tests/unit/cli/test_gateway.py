"""`bastion gateway --control-plane` refuses, in one line and before starting anything, what
would make it a danger to its host: a control plane's state directory, or certificate files
that are not a gateway's."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from click.testing import CliRunner

from bastion import pki
from bastion.cli.main import cli


def run(tmp_path: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["--state-dir", str(tmp_path / "state"), "gateway",
                                      "--control-plane", "127.0.0.1:1", *args])
    return result.exit_code, result.output


def test_a_control_planes_state_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "store.db").write_bytes(b"")
    code, output = run(tmp_path, "--cert", "c", "--key", "k", "--ca", "a")
    assert code == 1 and "a control plane's state directory" in output


def test_a_certificate_that_is_not_a_gateways_is_refused(tmp_path: Path) -> None:
    key = pki.new_key()
    start = dt.datetime.now(dt.UTC)
    other = pki.sign(pki.Request("not a gateway", not_before=start,
                                 not_after=start + dt.timedelta(days=1)), key.public_key(),
                     None, key)
    (tmp_path / "tls.crt").write_bytes(pki.cert_pem(other))
    (tmp_path / "tls.key").write_bytes(pki.key_pem(key).reveal())
    code, output = run(tmp_path, "--cert", str(tmp_path / "tls.crt"), "--key",
                       str(tmp_path / "tls.key"), "--ca", str(tmp_path / "tls.crt"))
    assert code == 1 and "not a gateway certificate" in output
    assert "PRIVATE" not in output
    code, output = run(tmp_path)
    assert code == 1 and "needs --cert, --key and --ca" in output
