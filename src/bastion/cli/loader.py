"""Reading manifests the way kubectl does: files, directories and stdin, multi-document YAML,
`kind: List`."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import yaml

from bastion.errors import InputError

SUFFIXES = (".yaml", ".yml", ".json")


# libyaml's parser is ~7x faster than PyYAML's pure-Python one; JSON is parsed as JSON.
LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _documents(text: str) -> list[Any]:
    if text.lstrip()[:1] in ("{", "["):
        try:
            return [json.loads(text)]
        except ValueError:
            pass  # not JSON after all: YAML flow style, or an error YAML will describe
    return list(yaml.load_all(text, Loader=LOADER))


def _parse(text: str, source: str) -> list[Any]:
    try:
        docs = [d for d in _documents(text) if d is not None]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InputError(f"error parsing {source}: malformed YAML{where}: {problem}") from None
    except UnicodeDecodeError:
        raise InputError(f"error parsing {source}: not valid UTF-8") from None
    except RecursionError:
        raise InputError(f"error parsing {source}: nested too deeply") from None
    out: list[Any] = []
    for doc in docs:
        if isinstance(doc, dict) and doc.get("kind") == "List" and isinstance(
                doc.get("items"), list):
            out.extend(doc["items"])
        else:
            out.append(doc)
    return out


def _read(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(f"error parsing {path}: not valid UTF-8") from None
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from None


def load_manifests(sources: tuple[str, ...], recursive: bool = False) -> list[Any]:
    """Every object in the given files; all are parsed before anything is sent, so a malformed
    file changes nothing."""
    objects: list[Any] = []
    for source in sources:
        if source == "-":
            data = sys.stdin.buffer.read()
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:
                raise InputError("error parsing STDIN: not valid UTF-8") from None
            objects.extend(_parse(text, "STDIN"))
            continue
        path = Path(source)
        if path.is_dir():
            pattern = "**/*" if recursive else "*"
            files = sorted(p for p in path.glob(pattern) if p.suffix in SUFFIXES and p.is_file())
            for file in files:
                objects.extend(_parse(_read(file), str(file)))
        elif path.exists():
            objects.extend(_parse(_read(path), str(path)))
        else:
            raise InputError(f'the path "{source}" does not exist')
    return objects
