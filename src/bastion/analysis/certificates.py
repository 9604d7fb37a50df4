"""Findings about the certificates a gateway serves: expired, not yet valid or expiring
soon; not covering the hosts of the server that serves them; and one host served with
different certificates by different Gateways (a client then sees a certificate that depends
on which address or port it came through)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.x509.oid import NameOID

from bastion.clock import parse_iso
from bastion.diag import Diagnostic, ObjectRef, Severity
from bastion.ir.model import GatewayConfig, Server, TlsCredential
from bastion.pem import CertificateSummary
from bastion.translate.istio.gateway import server_of
from bastion.translate.istio.resources import Resources

EXPIRY_WARNING = timedelta(days=30)


@dataclass(frozen=True, eq=False)
class Served:
    """A certificate as one Gateway server serves it."""

    gateway: ObjectRef
    field: str  # the server's path, `spec.servers[0]`
    hosts: tuple[str, ...]
    credential: TlsCredential


def served(res: Resources, configs: Iterable[GatewayConfig]) -> list[Served]:
    out: dict[tuple[ObjectRef, str, str], Served] = {}  # a credential holds a key: no hashing
    for config in configs:
        for listener in config.listeners:
            for server in listener.servers:
                at = _server_path(res, server)
                if server.tls is None or at is None:
                    continue
                ref = ObjectRef("Gateway", server.key.namespace, server.key.gateway)
                for name in server.tls.certificates:
                    credential = config.credential(name)
                    if credential is not None:
                        out[(ref, at, name)] = Served(ref, at, server.sni, credential)
    return [out[k] for k in sorted(out)]


def _server_path(res: Resources, server: Server) -> str | None:
    found = server_of(res, server.key)
    return f"spec.servers[{found[1]}]" if found is not None else None


def expiry(certificates: list[Served], now: datetime) -> Iterator[Diagnostic]:
    """Once per certificate, on the object that holds it (a Secret, or a file)."""
    seen: set[tuple[ObjectRef | None, str]] = set()
    for item in certificates:
        credential, summary = item.credential, item.credential.summary
        if summary is None or (credential.source, summary.serial) in seen:
            continue
        seen.add((credential.source, summary.serial))
        origin = credential.source or item.gateway
        what = f"certificate {_describe(summary)}, served by {item.gateway} {item.field},"
        not_before, not_after = parse_iso(summary.not_before), parse_iso(summary.not_after)
        if not_after <= now:
            yield Diagnostic(origin, "", "CertificateExpired",
                             f"{what} expired at {summary.not_after}: clients refuse it")
        elif not_before > now:
            yield Diagnostic(origin, "", "CertificateNotYetValid",
                             f"{what} is not valid until {summary.not_before}: clients refuse "
                             "it")
        elif not_after - now <= EXPIRY_WARNING:
            days = (not_after - now).days
            yield Diagnostic(origin, "", "CertificateExpiring",
                             f"{what} expires in {days} days, at {summary.not_after}",
                             Severity.WARNING)


def host_coverage(certificates: list[Served]) -> Iterator[Diagnostic]:
    """A host the server answers for that none of its certificates names (a server may hold
    an RSA and an ECDSA certificate: one naming the host is enough)."""
    by_server: dict[tuple[ObjectRef, str], list[Served]] = defaultdict(list)
    for item in certificates:
        by_server[(item.gateway, item.field)].append(item)
    for (gateway, at), items in sorted(by_server.items()):
        names = {n for item in items for n in _names(item.credential.summary)}
        if not names:
            continue
        for host in items[0].hosts:
            if host == "*" or any(covers(n, host) for n in names):
                continue
            held = ", ".join(sorted(names))
            yield Diagnostic(gateway, f"{at}.hosts", "CertificateHostMismatch",
                             f"the certificate of {items[0].credential.name} does not name "
                             f"{host} (it names {held}): clients checking the name refuse it",
                             Severity.WARNING)


def differing_certificates(certificates: list[Served]) -> Iterator[Diagnostic]:
    """One host served by two Gateways with two certificates."""
    by_host: dict[str, dict[ObjectRef, Served]] = defaultdict(dict)
    for item in certificates:
        for host in item.hosts:
            by_host[host.lower()].setdefault(item.gateway, item)
    for host, by_gateway in sorted(by_host.items()):
        chains = {item.credential.certificate_chain for item in by_gateway.values()}
        if len(by_gateway) < 2 or len(chains) < 2:
            continue
        for gateway, item in sorted(by_gateway.items()):
            others = ", ".join(f"{o.gateway} ({_origin(o)})" for g, o in sorted(by_gateway.items())
                               if g != gateway and o.credential.certificate_chain
                               != item.credential.certificate_chain)
            yield Diagnostic(gateway, f"{item.field}.hosts", "HostCertificateDiffers",
                             f"host {host} is served with {_origin(item)} here and with another "
                             f"certificate by {others}: a client sees one or the other by "
                             "where it connects", Severity.WARNING)


def covers(name: str, host: str) -> bool:
    """Does a certificate name cover a host (RFC 6125: a wildcard covers one label)?"""
    name, host = name.lower(), host.lower()
    if name == host:
        return True
    if name.startswith("*.") and not host.startswith("*."):
        return host.partition(".")[2] == name[2:]
    return False


def _names(summary: CertificateSummary | None) -> list[str]:
    """The DNS names a client checks: the SAN's, or without one the subject's CN (as
    OpenSSL, and so curl, still accept)."""
    if summary is None:
        return []
    if summary.dns_names:
        return list(summary.dns_names)
    try:
        subject = x509.Name.from_rfc4514_string(summary.subject)
    except ValueError:
        return []
    return [str(a.value) for a in subject.get_attributes_for_oid(NameOID.COMMON_NAME)]


def _describe(summary: CertificateSummary) -> str:
    return f"{summary.subject} (serial 0x{summary.serial})"


def _origin(item: Served) -> str:
    source = item.credential.source
    serial = item.credential.summary.serial if item.credential.summary else "?"
    return f"{source or item.credential.name} (serial 0x{serial})"
