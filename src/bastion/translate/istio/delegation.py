"""VirtualService delegation, one level, with Istio's merge: a root rule's `delegate` is
replaced by the delegate VirtualService's rules, each match narrowed by the root's (a delegate
match that conflicts with every root match drops its rule), and each rule taking from the root
what it leaves unset (rewrite, timeout, retries, fault, mirrors, CORS, headers...)."""

from __future__ import annotations

from bastion.api import istio
from bastion.api.base import with_fields

INHERITED = ("rewrite", "direct_response", "timeout", "retries", "fault", "mirror",
             "mirror_percent", "mirror_percentage", "cors_policy", "headers")


def delegate_of(res_virtual_services: dict[tuple[str, str], istio.VirtualService],
                root: istio.VirtualService, rule: istio.HTTPRoute
                ) -> istio.VirtualService | None:
    target = rule.delegate or {}
    namespace = str(target.get("namespace") or root.metadata.namespace or "default")
    return res_virtual_services.get((namespace, str(target.get("name", ""))))


def merge(root: istio.HTTPRoute, delegate: istio.HTTPRoute) -> istio.HTTPRoute | None:
    """The delegate's rule under the root's, or None when their matches conflict."""
    matches = _merge_matches(root.match, delegate.match)
    if matches is None:
        return None
    inherited = {name: getattr(root, name) for name in INHERITED
                 if getattr(delegate, name) in (None, []) and getattr(root, name) not in (
                     None, [])}
    if not delegate.mirrors and root.mirrors:
        inherited["mirrors"] = root.mirrors
    name = delegate.name or root.name
    if delegate.name and root.name:
        name = f"{root.name}-{delegate.name}"
    return with_fields(delegate, match=matches, name=name, **inherited)


def _merge_matches(root: list[istio.HTTPMatchRequest], delegate: list[istio.HTTPMatchRequest]
                   ) -> list[istio.HTTPMatchRequest] | None:
    if not root:
        return delegate
    if not delegate:
        return root
    out = []
    for leaf in delegate:
        found = [_merge_match(r, leaf) for r in root if not _conflict(r, leaf)]
        if not found:
            return None
        out.extend(found)
    return out


def _merge_match(root: istio.HTTPMatchRequest, leaf: istio.HTTPMatchRequest
                 ) -> istio.HTTPMatchRequest:
    return with_fields(
        leaf,
        uri=leaf.uri or root.uri, scheme=leaf.scheme or root.scheme,
        method=leaf.method or root.method, authority=leaf.authority or root.authority,
        headers={**root.headers, **leaf.headers},
        without_headers={**root.without_headers, **leaf.without_headers},
        query_params={**root.query_params, **leaf.query_params},
        port=leaf.port or root.port,
        source_labels={**root.source_labels, **leaf.source_labels},
        source_namespace=leaf.source_namespace or root.source_namespace,
        gateways=leaf.gateways or root.gateways,
        stat_prefix=leaf.stat_prefix or root.stat_prefix)


def _conflict(root: istio.HTTPMatchRequest, leaf: istio.HTTPMatchRequest) -> bool:
    for field in ("uri", "scheme", "method", "authority"):
        if _string_conflict(getattr(root, field), getattr(leaf, field)):
            return True
    for kind in ("headers", "without_headers", "query_params"):
        mine = getattr(root, kind)
        if any(_string_conflict(mine.get(k), v) for k, v in getattr(leaf, kind).items()):
            return True
    if root.ignore_uri_case != leaf.ignore_uri_case:
        return True
    if root.port and leaf.port and root.port != leaf.port:
        return True
    if root.source_namespace and leaf.source_namespace != root.source_namespace:
        return True
    if any(k in root.source_labels and root.source_labels[k] != v
           for k, v in leaf.source_labels.items()):
        return True
    return bool(root.gateways and leaf.gateways and not set(leaf.gateways) <= set(root.gateways))


def _string_conflict(root: istio.StringMatch | None, leaf: istio.StringMatch | None) -> bool:
    """Whether a leaf match can never hold under the root's (Istio's rules: a regex on either
    side allows nothing else on the other; an exact root takes only that exact leaf; a prefix
    root takes exacts and prefixes that start with it)."""
    if root is None or leaf is None:
        return False
    if root.regex is not None:
        return leaf.regex is not None or leaf.prefix is not None or leaf.exact is not None
    if leaf.regex is not None:
        return root.prefix is not None or root.exact is not None
    if root.exact is not None:
        return leaf.prefix is not None or leaf.exact != root.exact
    if root.prefix is not None:
        value = leaf.prefix if leaf.prefix is not None else leaf.exact
        return value is not None and not value.startswith(root.prefix)
    return False
