"""Istio's rules for values inside routes: durations, header names and values, regular
expressions, string matches, ports and weights."""

from __future__ import annotations

import re
from decimal import Decimal

import re2

# Durations as Istio's YAML writes them (`10s`, `0.5s`, `250ms`, `1m`, `1h`).
DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)$")
UNIT_NS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 10**9, "m": 60 * 10**9,
           "h": 3600 * 10**9}
# HTTP token characters (RFC 9110): what a header name may hold.
HEADER_NAME = re.compile(r"^[!#$%&'*+\-.^_`|~0-9a-zA-Z]+$")
PSEUDO_HEADERS = frozenset({":method", ":scheme", ":authority", ":path", ":status"})
# Control characters other than tab cannot be in a header value.
HEADER_VALUE_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
# Envoy compiles route regexes with RE2 and refuses programs larger than its runtime limit;
# bastion's bootstrap raises that limit to this value (as Istio's does), and admission checks it.
RE2_MAX_PROGRAM_SIZE = 32768
# Istio's own cap on a regex's length (it cannot compute RE2's program size).
REGEX_MAX_LENGTH = 1024


def duration_ns(value: str) -> int | None:
    match = DURATION.match(value.strip())
    if not match:
        return None
    return int(Decimal(match.group(1)) * UNIT_NS[match.group(2)])


def duration_problem(value: str) -> str | None:
    """Istio takes durations of at least 1 ms, to the millisecond."""
    ns = duration_ns(value)
    if ns is None:
        return f"invalid duration {value!r} (for example 500ms, 10s, 1m)"
    if ns < 1_000_000:
        return f"duration {value!r} must be at least 1ms"
    if ns % 1_000_000:
        return f"duration {value!r}: only whole milliseconds are supported"
    return None


def header_name_problem(name: str, allow_pseudo: bool = False) -> str | None:
    if not name:
        return "header name cannot be empty"
    if allow_pseudo and name in PSEUDO_HEADERS:
        return None
    if not HEADER_NAME.match(name):
        return f"{name!r} is not a valid header name"
    return None


def is_authority(name: str) -> bool:
    return name.lower() in (":authority", "host")


def header_operation_problem(name: str, allow_authority: bool) -> str | None:
    """A header a route sets, adds or removes: never a pseudo-header or Host, except that a
    request's `:authority` (or Host) may be set or added (it rewrites the authority)."""
    if not name:
        return "header name cannot be empty"
    if allow_authority and is_authority(name):
        return None
    if name.startswith(":"):
        return f"header {name!r} cannot be changed (pseudo-header)"
    if name.lower() == "host":
        return f"header {name!r} cannot be changed (use :authority in request headers)"
    return None


def header_value_problem(value: str) -> str | None:
    """Envoy reads `%NAME%` and `%NAME(args)%` in header values as variables and `%%` as a
    literal `%`; anything else with a `%` is refused by Envoy, so here."""
    if HEADER_VALUE_CONTROL.search(value):
        return "header value must not contain control characters"
    i, n = 0, len(value)
    while i < n:
        if value[i] != "%":
            i += 1
            continue
        if i + 1 < n and value[i + 1] == "%":
            i += 2
            continue
        end = _variable_end(value, i + 1)
        if end is None:
            return f"header value {value!r}: unescaped '%' (write %% for a literal %)"
        i = end + 1
    return None


def _variable_end(value: str, start: int) -> int | None:
    """Where the `%` closing the variable that starts at `start` is, or None."""
    depth_quote = False
    parens = 0
    for i in range(start, len(value)):
        ch = value[i]
        if depth_quote:
            if ch == '"':
                depth_quote = False
            continue
        if ch == '"' and parens:
            depth_quote = True
        elif ch == "(":
            parens += 1
        elif ch == ")" and parens:
            parens -= 1
        elif ch == "%" and not parens:
            return i if i > start else None
    return None


def regex_problem(pattern: str) -> str | None:
    """Why Envoy's RE2 (or Istio's length cap) would refuse `pattern`, or None."""
    if not pattern:
        return "regex cannot be empty"
    if len(pattern) > REGEX_MAX_LENGTH:
        return f"regex is too long (at most {REGEX_MAX_LENGTH} characters)"
    options = re2.Options()
    options.log_errors = False
    try:
        compiled = re2.compile(pattern, options)
    except re2.error as exc:
        reason = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else exc
        return f"invalid RE2 regular expression: {reason}"
    if compiled.programsize > RE2_MAX_PROGRAM_SIZE:
        return (f"regular expression too large for RE2 (program size {compiled.programsize} > "
                f"{RE2_MAX_PROGRAM_SIZE})")
    return None


def port_problem(number: int) -> str | None:
    if 1 <= number <= 65535:
        return None
    return f"port number {number} must be in the range 1..65535"
