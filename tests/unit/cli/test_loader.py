from __future__ import annotations

from pathlib import Path

import pytest

from bastion.cli.loader import load_manifests
from bastion.cli.main import normalise_argv
from bastion.cli.output import redact
from bastion.errors import InputError


def test_multi_document_and_list(tmp_path: Path) -> None:
    path = tmp_path / "a.yaml"
    path.write_text("---\nkind: A\n---\n\n---\nkind: List\nitems: [{kind: B}, {kind: C}]\n")
    assert [o["kind"] for o in load_manifests((str(path),))] == ["A", "B", "C"]


def test_directory_reads_yaml_files_in_order(tmp_path: Path) -> None:
    (tmp_path / "b.yaml").write_text("kind: B\n")
    (tmp_path / "a.yml").write_text("kind: A\n")
    (tmp_path / "notes.txt").write_text("kind: X\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "c.yaml").write_text("kind: C\n")
    assert [o["kind"] for o in load_manifests((str(tmp_path),))] == ["A", "B"]
    assert [o["kind"] for o in load_manifests((str(tmp_path),), recursive=True)] == [
        "A", "B", "C"]


def test_malformed_yaml_is_one_line_with_position(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("kind: Gateway\nspec:\n  servers: [\n")
    with pytest.raises(InputError) as info:
        load_manifests((str(path),))
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"error parsing {path}: malformed YAML at line")


def test_invalid_utf8_and_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "bin.yaml"
    path.write_bytes(b"kind: \xff\xfe\n")
    with pytest.raises(InputError, match="not valid UTF-8"):
        load_manifests((str(path),))
    with pytest.raises(InputError, match="does not exist"):
        load_manifests((str(tmp_path / "nope.yaml"),))


def test_kubectl_boolean_flag_spelling() -> None:
    assert normalise_argv(["delete", "--ignore-not-found=true", "secret", "a"]) == [
        "delete", "--ignore-not-found", "secret", "a"]
    assert normalise_argv(["delete", "--ignore-not-found=false", "x"]) == ["delete", "x"]
    assert normalise_argv(["--other=true"]) == ["--other=true"]


def test_redact_hides_private_keys_only() -> None:
    import base64

    key = base64.b64encode(b"-----BEGIN PRIVATE KEY-----\nabc\n").decode()
    body = {"kind": "Secret", "data": {"tls.key": "eA==", "ca.crt": "eA==", "other": key}}
    assert redact(body)["data"] == {"tls.key": "[redacted]", "ca.crt": "eA==",
                                    "other": "[redacted]"}
