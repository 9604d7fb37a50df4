"""kubectl's `-o jsonpath=TEMPLATE`: its template syntax (text with `{expression}` blocks,
`{range …}…{end}`, quoted literals such as `{"\\n"}`) over jsonpath-ng, which evaluates each
expression (paths, `[*]`, slices, unions, `..`, and filters like `[?(@.name=="https")]`)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from jsonpath_ng.exceptions import JsonPathLexerError, JsonPathParserError
from jsonpath_ng.ext import parse

from bastion.errors import InputError


@dataclass(frozen=True)
class _Text:
    value: str


@dataclass(frozen=True)
class _Expr:
    path: str


@dataclass(frozen=True)
class _Range:
    path: str
    body: tuple[_Text | _Expr | _Range, ...]


Node = _Text | _Expr | _Range


def render(template: str, data: Any) -> str:
    """The template applied to `data` (a single object, or kubectl's List of items)."""
    blocks = _blocks(template)
    nodes, rest = _parse(blocks, 0, template)
    if rest != len(blocks):
        raise InputError(f"error parsing jsonpath {template}, unexpected {{end}}")
    return _run(nodes, data, template)


def _blocks(template: str) -> list[tuple[bool, str]]:
    """(is a {block}, text) pieces; a `}` inside a quoted literal does not close a block."""
    out: list[tuple[bool, str]] = []
    i, n = 0, len(template)
    while i < n:
        start = template.find("{", i)
        if start < 0:
            out.append((False, template[i:]))
            break
        if start > i:
            out.append((False, template[i:start]))
        j, quote = start + 1, ""
        while j < n and (quote or template[j] != "}"):
            if quote and template[j] == "\\":
                j += 1
            elif template[j] in "\"'":
                quote = "" if quote == template[j] else (quote or template[j])
            j += 1
        if j >= n:
            raise InputError(f"error parsing jsonpath {template}, unclosed action")
        out.append((True, template[start + 1:j].strip()))
        i = j + 1
    return out


def _parse(blocks: list[tuple[bool, str]], index: int, template: str
           ) -> tuple[tuple[Node, ...], int]:
    nodes: list[Node] = []
    while index < len(blocks):
        is_block, text = blocks[index]
        index += 1
        if not is_block:
            nodes.append(_Text(text))
        elif text == "end":
            return tuple(nodes), index - 1
        elif text.startswith("range "):
            body, index = _parse(blocks, index, template)
            if index >= len(blocks) or blocks[index] != (True, "end"):
                raise InputError(f"error parsing jsonpath {template}, range without end")
            index += 1
            nodes.append(_Range(text[len("range "):].strip(), body))
        elif text[:1] in "\"'":
            nodes.append(_Text(_literal(text, template)))
        else:
            nodes.append(_Expr(text))
    return tuple(nodes), index


def _literal(text: str, template: str) -> str:
    """A quoted literal, with the escapes kubectl reads (`\\n`, `\\t`, `\\r`, quotes)."""
    if len(text) < 2 or text[-1] != text[0]:
        raise InputError(f"error parsing jsonpath {template}, unterminated literal {text}")
    inner, out, i = text[1:-1], [], 0
    escapes = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'"}
    while i < len(inner):
        if inner[i] == "\\" and i + 1 < len(inner) and inner[i + 1] in escapes:
            out.append(escapes[inner[i + 1]])
            i += 2
        else:
            out.append(inner[i])
            i += 1
    return "".join(out)


ESCAPED = re.compile(r"\.((?:[^.\[\]'\"\\]|\\\.)*\\\.(?:[^.\[\]'\"\\]|\\\.)*)")


def _expression(path: str) -> str:
    """kubectl's relaxed paths (`.items[0]`, `@.name`, `.`, `labels.kubernetes\\.io/name`) as
    JSONPath (`$.items[0]`, `labels.'kubernetes.io/name'`)."""
    path = ESCAPED.sub(lambda m: ".'" + m.group(1).replace("\\.", ".") + "'", path)
    if path.startswith("$"):
        return path
    if path.startswith("@"):
        return "$" + path[1:]
    if path in ("", "."):
        return "$"
    return "$" + path


def _find(path: str, data: Any, template: str) -> list[Any]:
    try:
        expression = parse(_expression(path))
    except (JsonPathLexerError, JsonPathParserError) as exc:
        raise InputError(f"error parsing jsonpath {template}: {exc}") from None
    return [match.value for match in expression.find(data)]


def _run(nodes: tuple[Node, ...], data: Any, template: str) -> str:
    out: list[str] = []
    for node in nodes:
        if isinstance(node, _Text):
            out.append(node.value)
        elif isinstance(node, _Expr):
            out.append(" ".join(_show(v) for v in _find(node.path, data, template)))
        else:
            matches = _find(node.path, data, template)
            items = matches[0] if len(matches) == 1 and isinstance(matches[0], list) else matches
            out.extend(_run(node.body, item, template) for item in items)
    return "".join(out)


def _show(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)
