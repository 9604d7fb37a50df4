"""The Gateway API's order of HTTPRoute rules within a host, across routes: an Exact path
before any prefix, a longer prefix before a shorter one, then a rule with a method match, more
header matches, more query parameter matches; ties keep the oldest route's rules first, each
route's in their order. (Regular expressions, whose precedence the API leaves to the
implementation, come after prefixes.)"""

from __future__ import annotations

from bastion.ir.model import PathKind, Route

KIND_RANK = {PathKind.EXACT: 0, PathKind.PREFIX: 1, PathKind.REGEX: 2}


def key(route: Route) -> tuple[int, int, int, int, int]:
    match = route.match
    path = match.path
    method = any(h.name == ":method" for h in match.headers)
    headers = sum(1 for h in match.headers if not h.name.startswith(":"))
    return (KIND_RANK[path.kind], -len(path.value) if path.kind == PathKind.PREFIX else 0,
            0 if method else 1, -headers, -len(match.query))


def ordered(routes: list[Route]) -> list[Route]:
    """Sorted stably, so ties keep the order routes (oldest first) and rules were given in."""
    return sorted(routes, key=key)
