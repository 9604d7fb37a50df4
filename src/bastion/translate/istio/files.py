"""File-based certificates: which files a Gateway's TLS settings (or a DestinationRule's TLS
to its backends) name, the names their credentials go by, and whether a path lies inside the
directories the operator allowed.

Pure: reading the files is the control plane's file watcher's job; translation sees what it
read (`Resources.files`).
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable
from dataclasses import dataclass

from bastion.api import istio

# The group of the keys a changed file goes by in a build's `changed` set.
FILE_GROUP = "files.bastion.dev"
# The OCSP staple of a file-based certificate: a file of this name in the certificate's
# directory (where a mounted Secret's `tls.ocsp-staple` key appears).
STAPLE_FILE = "tls.ocsp-staple"


@dataclass(frozen=True)
class FileRefs:
    """Certificate/key pairs, CA bundles with their CRL, and optional staples a Gateway names."""

    pairs: frozenset[tuple[str, str]] = frozenset()
    cas: frozenset[tuple[str, str]] = frozenset()  # (CA bundle or "", CRL or "")
    staples: frozenset[str] = frozenset()

    def __bool__(self) -> bool:
        return bool(self.pairs or self.cas)

    @property
    def paths(self) -> frozenset[str]:
        out = {p for pair in self.pairs for p in pair} | {p for ca in self.cas for p in ca if p}
        return frozenset(out | self.staples)

    @staticmethod
    def union(refs: Iterable[FileRefs]) -> FileRefs:
        pairs: set[tuple[str, str]] = set()
        cas: set[tuple[str, str]] = set()
        staples: set[str] = set()
        for ref in refs:
            pairs |= ref.pairs
            cas |= ref.cas
            staples |= ref.staples
        return FileRefs(frozenset(pairs), frozenset(cas), frozenset(staples))


def server_pairs(tls: istio.ServerTLSSettings) -> list[tuple[str, str, str]]:
    """(field path below `tls`, certificate, key) of each file pair a server names."""
    if tls.tls_certificates:
        return [(f"tlsCertificates[{k}]", c.server_certificate or "", c.private_key or "")
                for k, c in enumerate(tls.tls_certificates)]
    if tls.server_certificate or tls.private_key:
        return [("", tls.server_certificate or "", tls.private_key or "")]
    return []


def file_refs(gateway: istio.Gateway) -> FileRefs:
    pairs: set[tuple[str, str]] = set()
    cas: set[tuple[str, str]] = set()
    for server in gateway.spec.servers:
        tls = server.tls
        if tls is None:
            continue
        if not (tls.credential_name or tls.credential_names):
            pairs.update((cert, key) for _, cert, key in server_pairs(tls) if cert and key)
        if tls.ca_certificates or tls.ca_crl:
            cas.add((tls.ca_certificates or "", tls.ca_crl or ""))
    staples = {staple_path(cert) for cert, _ in pairs}
    return FileRefs(frozenset(pairs), frozenset(cas), frozenset(staples))


def client_tls_settings(rule: istio.DestinationRule
                        ) -> list[tuple[str, istio.ClientTLSSettings]]:
    """(field path, settings) of every `tls` a DestinationRule holds: its policy's, its
    port-level settings', and its subsets'."""
    policies = [("spec.trafficPolicy", rule.spec.traffic_policy)] + [
        (f"spec.subsets[{i}].trafficPolicy", s.traffic_policy)
        for i, s in enumerate(rule.spec.subsets)]
    out = []
    for at, policy in policies:
        if policy is None:
            continue
        if policy.tls is not None:
            out.append((f"{at}.tls", policy.tls))
        out.extend((f"{at}.portLevelSettings[{k}].tls", level.tls)
                   for k, level in enumerate(policy.port_level_settings) if level.tls is not None)
    return out


def client_files(tls: istio.ClientTLSSettings) -> list[tuple[str, str]]:
    """(field, path) of the files a backend TLS setting names (none when a credential
    names the certificates instead: `credentialName` wins, as in Istio)."""
    if tls.credential_name:
        return []
    return [(field, path) for field, path in (
        ("clientCertificate", tls.client_certificate), ("privateKey", tls.private_key),
        ("caCertificates", tls.ca_certificates), ("caCrl", tls.ca_crl)) if path]


def rule_file_refs(rule: istio.DestinationRule) -> FileRefs:
    pairs: set[tuple[str, str]] = set()
    cas: set[tuple[str, str]] = set()
    for _, tls in client_tls_settings(rule):
        if tls.credential_name or tls.mode not in ("SIMPLE", "MUTUAL"):
            continue
        if tls.mode == "MUTUAL" and tls.client_certificate and tls.private_key:
            pairs.add((tls.client_certificate, tls.private_key))
        if tls.ca_certificates:
            cas.add((tls.ca_certificates, tls.ca_crl or ""))
    return FileRefs(frozenset(pairs), frozenset(cas))


def staple_path(certificate: str) -> str:
    return posixpath.join(posixpath.dirname(certificate), STAPLE_FILE)


def pair_name(certificate: str, key: str) -> str:
    """A file pair's credential name (its SDS name): never a Secret's, which has no ':'."""
    return f"file-cert:{certificate}~{key}"


def ca_name(bundle: str, crl: str) -> str:
    return f"file-root:{bundle}" + (f"~{crl}" if crl else "")


def confinement_problem(path: str, allowed: tuple[str, ...]) -> str | None:
    """Why the gateway will not read `path`: it must be absolute and, once `.` and `..` are
    resolved, inside one of `allowed` (symbolic links are checked when the file is read)."""
    if not path.startswith("/"):
        return f"{path!r} is not an absolute path"
    if not allowed:
        return (f"{path!r}: file-based certificates are off (no directory is allowed; start "
                "the gateway with --cert-dir DIR)")
    normal = posixpath.normpath(path)
    for directory in allowed:
        root = posixpath.normpath(directory)
        if normal == root or normal.startswith(root.rstrip("/") + "/"):
            return None
    return f"{path!r} is outside the directories allowed by --cert-dir ({', '.join(allowed)})"


def confinement_problems(model: istio.Gateway | istio.DestinationRule, allowed: tuple[str, ...]
                         ) -> list[tuple[str, str]]:
    """(field, reason) of every file the object names that the gateway will not read."""
    if isinstance(model, istio.DestinationRule):
        return [(f"{at}.{field}", reason) for at, tls in client_tls_settings(model)
                for field, path in client_files(tls)
                if (reason := confinement_problem(path, allowed))]
    out = []
    for i, server in enumerate(model.spec.servers):
        tls = server.tls
        if tls is None:
            continue
        at = f"spec.servers[{i}].tls"
        named = [] if tls.credential_name or tls.credential_names else [
            (f"{at}.{sub + '.' if sub else ''}{field}", path)
            for sub, cert, key in server_pairs(tls)
            for field, path in (("serverCertificate", cert), ("privateKey", key)) if path]
        named += [(f"{at}.{field}", path) for field, path in (
            ("caCertificates", tls.ca_certificates), ("caCrl", tls.ca_crl)) if path]
        for field_path, path in named:
            reason = confinement_problem(path, allowed)
            if reason:
                out.append((field_path, reason))
    return out
