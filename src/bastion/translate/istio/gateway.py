"""Gateways to listeners: which servers this gateway runs, on which ports, with which SNI chains,
TLS policies, credentials and virtual hosts. The entry point of the first translation seam."""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import TypeVar

from bastion.api import core, istio, validation
from bastion.api.validation.names import is_ip
from bastion.diag import Diagnostic, ObjectRef, Severity
from bastion.errors import CredentialError, CredentialNotFound
from bastion.ir.model import (
    Backend,
    BackendRef,
    CaCredential,
    Forward,
    GatewayConfig,
    Listener,
    Route,
    Server,
    ServerKey,
    TicketKeys,
    TlsCredential,
    TlsMode,
    TlsPolicy,
    TlsRoute,
    UpstreamTls,
    VirtualHost,
    with_named,
)
from bastion.layered import with_changes
from bastion.memo import Memo
from bastion.private import PrivateBytes
from bastion.translate.gatewayapi import GENERATED, original, precedence, with_gateway_api
from bastion.translate.istio import backends, challenges, credentials, files, hosts, policies
from bastion.translate.istio.refs import bindable_hosts, gateway_refs
from bastion.translate.istio.resources import Options, Resources, Workload
from bastion.translate.istio.routes import RouteBuilder, binds, is_catch_all
from bastion.translate.istio.tickets import ticket_keys

C = TypeVar("C", TlsCredential, CaCredential)
MISDIRECTED_LIMIT = 64
# Curves Istio accepts that the gateway cannot serve: Envoy's BoringSSL no longer has them.
UNSERVED_CURVES = frozenset({"P-224", "X25519Kyber768Draft00"})
SERVED_CURVES = validation.ISTIO_ECDH_CURVES - UNSERVED_CURVES
# Warnings about where routes lead, made again for the routes of each refresh.
DESTINATION_CODES = frozenset({"NotFound", "NoEndpoints"})
HTTP_FAMILY = {"HTTP", "HTTP2", "GRPC", "GRPC-WEB", "HTTP_PROXY"}
TERMINATING = {istio.TLSMode.SIMPLE, istio.TLSMode.MUTUAL, istio.TLSMode.OPTIONAL_MUTUAL}
MESH_MODES = {istio.TLSMode.ISTIO_MUTUAL, istio.TLSMode.AUTO_PASSTHROUGH}
TCP_FAMILY = {"TCP", "MONGO", "REDIS", "MYSQL"}
TLS_VERSIONS = {
    istio.TLSProtocol.TLSV1_0: "1.0",
    istio.TLSProtocol.TLSV1_1: "1.1",
    istio.TLSProtocol.TLSV1_2: "1.2",
    istio.TLSProtocol.TLSV1_3: "1.3",
}


@dataclass(frozen=True)
class IrResult:
    config: GatewayConfig
    diagnostics: tuple[Diagnostic, ...]
    # Names of the Secrets (in the gateway's namespace) that translation read or looked for.
    secret_deps: frozenset[str] = frozenset()
    # The Gateways each VirtualService names, as translated: a change to a VirtualService can
    # only affect the servers of these (and of the ones it names now).
    vs_gateways: Mapping[tuple[str, str], frozenset[tuple[str, str]]] = field(
        default_factory=dict, compare=False)
    # Where each Gateway's HTTPS servers sit ((listener, server) positions), which Gateways feed
    # a plain-HTTP server (shared per port), and how many servers route to each backend: what
    # lets a route edit re-translate one server without visiting the others.
    gateway_servers: dict[tuple[str, str], tuple[tuple[int, int], ...]] = field(
        default_factory=dict, compare=False)
    plain_gateways: frozenset[tuple[str, str]] = field(default=frozenset(), compare=False)
    backend_refs: dict[BackendRef, int] = field(default_factory=dict, compare=False)


class FieldError(CredentialError):
    """A credential problem and the field that caused it; `missing`: no Secret of the name."""

    def __init__(self, field_path: str, message: str, missing: bool = False) -> None:
        super().__init__(message)
        self.field = field_path
        self.missing = missing

    @property
    def code(self) -> str:
        return "CredentialNotFound" if self.missing else "CredentialInvalid"


@contextmanager
def field_errors(field_path: str) -> Iterator[None]:
    """Credential problems raised inside are the fault of `field_path`."""
    try:
        yield
    except FieldError:
        raise
    except CredentialError as exc:
        raise FieldError(field_path, str(exc), isinstance(exc, CredentialNotFound)) from None


@dataclass(frozen=True)
class _Entry:
    gateway: istio.Gateway
    index: int
    server: istio.Server

    @property
    def ref(self) -> ObjectRef:
        meta = self.gateway.metadata
        return ObjectRef("Gateway", meta.namespace or "", meta.name)

    @property
    def at(self) -> str:
        return f"spec.servers[{self.index}]"


def selects(gateway: istio.Gateway, workload: Workload) -> bool:
    labels = workload.label_map
    return all(labels.get(k) == v for k, v in gateway.spec.selector.items())


@dataclass
class _Translation:
    res: Resources
    workload: Workload
    options: Options
    diagnostics: list[Diagnostic] = field(default_factory=list)
    tls_credentials: dict[str, TlsCredential] = field(default_factory=dict)
    ca_credentials: dict[str, CaCredential] = field(default_factory=dict)
    memo: Memo = field(default_factory=Memo)
    lookup: credentials.SecretLookup | None = None
    # VirtualServices naming each Gateway, oldest first, filled as Gateways are translated.
    _vs_index: dict[tuple[str, str], list[istio.VirtualService]] = field(default_factory=dict)
    _dest_index: dict[str, list[tuple[ObjectRef, str, str]]] | None = None
    tickets: TicketKeys | None = None

    def __post_init__(self) -> None:
        self.tickets = ticket_keys(self.res.secrets, self.workload)

    def problem(self, entry: _Entry, field_path: str, code: str, message: str,
                severity: Severity = Severity.ERROR) -> None:
        self.diagnostics.append(Diagnostic(entry.ref, field_path, code, message, severity))

    def _named(self, entry: _Entry) -> str:
        """A server as its author wrote it (a Gateway API listener, not the Gateway made of
        it)."""
        found = original(Diagnostic(entry.ref, entry.at, "", ""), self.res)
        return f"{found.object} {found.field}"

    def run(self) -> GatewayConfig:
        by_listener: dict[tuple[str, int], list[_Entry]] = defaultdict(list)
        selected = self._selected_gateways()
        for gateway in selected:
            for i, server in enumerate(gateway.spec.servers):
                entry = _Entry(gateway, i, server)
                if server.default_endpoint:
                    self.problem(entry, f"{entry.at}.defaultEndpoint", "Ignored",
                                 "a sidecar setting; ignored at a gateway", Severity.WARNING)
                if server.bind and not is_ip(server.bind):
                    self.problem(entry, f"{entry.at}.bind", "Unsupported",
                                 "only IP addresses can be bound; server skipped",
                                 Severity.WARNING)
                    continue
                address = server.bind or self.options.bind_address
                by_listener[(address, self.options.bind_port(server.port.number))].append(entry)
        listeners = []
        for (address, bind_port), entries in sorted(by_listener.items(), key=lambda i: i[0][1]):
            listener = self._listener(address, bind_port, entries)
            if listener is not None:
                listeners.append(listener)
        if self.res.challenges:
            listeners = challenges.with_challenges(
                listeners, challenges.wanted(self.res.challenges.values(), selected),
                self.options)
        used = self._referenced_backends(listeners)
        return GatewayConfig(
            listeners=tuple(listeners),
            backends=tuple(b for b in (self._backend(r) for r in sorted(
                used, key=lambda r: (r.host, r.port, r.subset))) if b is not None),
            tls_credentials=tuple(sorted(self.tls_credentials.values(), key=lambda c: c.name)),
            ca_credentials=tuple(sorted(self.ca_credentials.values(), key=lambda c: c.name)),
            # Only where a server seals tickets with them: nothing unreferenced is sent.
            ticket_keys=self.tickets if any(
                s.tls is not None and s.tls.ticket_keys for listener in listeners
                for s in listener.servers) else None,
        )

    def _selected_gateways(self) -> list[istio.Gateway]:
        chosen = [g for g in self.res.gateways.values() if selects(g, self.workload)]
        # Istio merges Gateways oldest first; names break ties so output is deterministic.
        return sorted(chosen, key=lambda g: (g.metadata.creation_timestamp or "",
                                             g.metadata.namespace or "", g.metadata.name))

    def _listener(self, address: str, bind_port: int, entries: list[_Entry]) -> Listener | None:
        plain: list[_Entry] = []
        terminating: list[_Entry] = []
        tcp: list[_Entry] = []
        family = None
        for entry in entries:
            protocol = entry.server.port.protocol.upper()
            tls = entry.server.tls
            if protocol in HTTP_FAMILY:
                kind = "plain"
            elif protocol in TCP_FAMILY and tls is None:
                kind = "tcp"
            elif tls is not None and protocol in ("HTTPS", "TLS") and (
                    tls.mode in TERMINATING or tls.mode == istio.TLSMode.PASSTHROUGH):
                kind = "tls"  # told apart by SNI: terminated here (HTTP or TCP), or passed on
            elif tls is not None and tls.mode in MESH_MODES:
                self.problem(entry, f"{entry.at}.tls.mode", "Unsupported",
                             f"server not programmed: {tls.mode} needs a mesh (workload "
                             "certificates and Istio's own SNI names from istiod); bastion is a "
                             "standalone gateway")
                continue
            else:
                mode = tls.mode if tls is not None else "none"
                self.problem(entry, entry.at, "Unsupported",
                             f"protocol {protocol} with TLS mode {mode} is not supported yet; "
                             "server skipped", Severity.WARNING)
                continue
            if family is not None and family != kind:
                served = {"plain": "plain HTTP", "tls": "TLS", "tcp": "plain TCP"}[family]
                self.problem(entry, entry.at, "PortConflict",
                             f"port {entry.server.port.number} already serves {served}; "
                             "server skipped")
                continue
            family = kind
            {"plain": plain, "tls": terminating, "tcp": tcp}[kind].append(entry)
        servers: list[Server] = []
        if plain:
            servers.append(self._plain_server(bind_port, plain))
        if tcp:
            servers.extend(self._tcp_server(bind_port, tcp))
        servers.extend(_with_misdirected(self._unique_sni(self._tls_servers(terminating))))
        if self.options.http3:
            servers = [replace(s, http3_port=bind_port) if s.tls is not None
                       and s.key.protocol == "https" else s for s in servers]
        if not servers:
            return None
        port = entries[0].server.port.number
        return Listener(port=port, bind_address=address, bind_port=bind_port,
                        servers=tuple(servers))

    # -- plain HTTP ---------------------------------------------------------------------------

    def _plain_server(self, bind_port: int, entries: list[_Entry]) -> Server:
        port = entries[0].server.port.number
        vhosts: dict[str, list[Route]] = {}
        redirect_hosts: set[str] = set()
        for entry in entries:
            server_hosts = entry.server.hosts
            for host, routes in self._bound_routes(entry, server_hosts):
                vhosts.setdefault(host, []).extend(routes)
            if entry.server.tls is not None and entry.server.tls.https_redirect:
                for h in server_hosts:
                    redirect_hosts.add(hosts.split_namespace(h)[1].lower())
        for host in redirect_hosts:
            vhosts.setdefault(host, [])
        virtual_hosts = self._virtual_hosts(vhosts, port, redirect_hosts)
        return Server(
            key=ServerKey("http", bind_port),
            sni=(),
            tls=None,
            virtual_hosts=virtual_hosts,
            sources=tuple(sorted({e.ref for e in entries})),
        )

    # -- HTTPS --------------------------------------------------------------------------------

    def _tls_servers(self, entries: list[_Entry]) -> list[Server]:
        out: list[Server] = []
        seen_hosts: dict[str, _Entry] = {}
        seen_routes: set[ServerKey] = set()
        for entry in entries:
            server = entry.server
            sni = sorted({hosts.split_namespace(h)[1].lower() for h in server.hosts})
            clash = [h for h in sni if h in seen_hosts]
            if clash:
                # Said on both: the server skipped, and the one that keeps the host (one may
                # be an Istio Gateway's, the other a Gateway API listener's).
                other = seen_hosts[clash[0]]
                self.problem(entry, f"{entry.at}.hosts", "DuplicateHost",
                             f"host {clash[0]} is already served on port {server.port.number} "
                             f"by {self._named(other)}; server skipped")
                self.problem(other, f"{other.at}.hosts", "DuplicateHost",
                             f"host {clash[0]} on port {server.port.number} is also claimed by "
                             f"{self._named(entry)}, which is skipped", Severity.WARNING)
                continue
            gw = entry.gateway.metadata
            passthrough = server.tls is not None and server.tls.mode == istio.TLSMode.PASSTHROUGH
            streams = server.port.protocol.upper() == "TLS"  # TCP inside (passed on or not)
            key = ServerKey("tls" if streams or passthrough else "https", server.port.number,
                            server.port.name, gw.name, gw.namespace or "")
            if key in seen_routes:
                self.problem(entry, f"{entry.at}.port.name", "DuplicatePortName",
                             f"port name {server.port.name} is not unique; server skipped")
                continue
            chain_sni = () if "*" in sni else tuple(sni)  # `*`: the chain for any name
            if passthrough:
                made = Server(key=key, sni=chain_sni, tls=None,
                              virtual_hosts=(), sources=(entry.ref,), name=server.name or "",
                              passthrough=self._tls_routes(entry))
            elif streams:
                routes = self._tcp_routes(entry)
                if not routes:  # no chain: its credential is not taken either
                    self.problem(entry, entry.at, "NoRoutes",
                                 "no VirtualService tcp route for this TLS server; nothing is "
                                 "forwarded", Severity.WARNING)
                    continue
                policy = self._tls_policy(entry)
                if policy is None:
                    continue
                made = Server(key=key, sni=chain_sni, tls=policy,
                              virtual_hosts=(), sources=(entry.ref,), name=server.name or "",
                              passthrough=routes)
            else:
                policy = self._tls_policy(entry)
                if policy is None:
                    continue
                made = Server(key=key, sni=chain_sni, tls=policy,
                              virtual_hosts=self._tls_virtual_hosts(entry),
                              sources=(entry.ref,), name=server.name or "")
            for h in sni:
                seen_hosts[h] = entry
            seen_routes.add(key)
            out.append(made)
        return out

    def _tls_routes(self, entry: _Entry) -> tuple[TlsRoute, ...]:
        """The `tls` rules of the VirtualServices bound to a passthrough server, one route per
        match, with the SNI names the match and the server's hosts have in common."""
        gw = entry.gateway.metadata
        builder = self._route_builder(self.diagnostics)
        port = entry.server.port.number
        out: list[TlsRoute] = []
        for vs in self._bound_to(gw.namespace or "", gw.name):
            ref = ObjectRef("VirtualService", vs.metadata.namespace or "", vs.metadata.name)
            allowed = bindable_hosts(entry.gateway, entry.server.hosts, vs)
            for i, rule in enumerate(vs.spec.tls):
                at = f"spec.tls[{i}]"
                for match in rule.match:
                    if match.gateways and not binds(vs, match.gateways, gw.namespace or "",
                                                    gw.name):
                        continue
                    if match.port and match.port != port:
                        continue
                    names: list[str] = []
                    for sni in match.sni_hosts:
                        for server_host in allowed:
                            both = hosts.intersect(server_host, sni)
                            if both is not None and both.lower() not in names:
                                names.append(both.lower())
                    if not names:
                        continue
                    weighted = builder.backends(vs, ref, at, rule.route)
                    out.append(TlsRoute(sni=tuple(names),
                                        backends=tuple(b for b in weighted if b.weight > 0),
                                        source=ref))
        return tuple(out)

    def _tcp_server(self, bind_port: int, entries: list[_Entry]) -> list[Server]:
        """A port's plain TCP server: nothing tells its connections apart, so the first server
        (oldest Gateway) takes the port."""
        first, rest = entries[0], entries[1:]
        for entry in rest:
            self.problem(entry, entry.at, "PortConflict",
                         f"port {entry.server.port.number} already has a TCP server "
                         f"({first.ref} {first.at}); server skipped")
        routes = self._tcp_routes(first)
        if not routes:
            self.problem(first, first.at, "NoRoutes",
                         "no VirtualService tcp route for this server; nothing is forwarded",
                         Severity.WARNING)
            return []
        return [Server(key=ServerKey("tcp", bind_port), sni=(), tls=None, virtual_hosts=(),
                       sources=(first.ref,), name=first.server.name or "",
                       passthrough=routes[:1])]

    def _tcp_routes(self, entry: _Entry) -> tuple[TlsRoute, ...]:
        """The first VirtualService `tcp` rule that applies to the server (its match names the
        server's port, or it has none), from the VirtualServices bound to the server's hosts."""
        gw = entry.gateway.metadata
        builder = self._route_builder(self.diagnostics)
        port = entry.server.port.number
        for vs in self._bound_to(gw.namespace or "", gw.name):
            names = bindable_hosts(entry.gateway, entry.server.hosts, vs)
            if not any(hosts.intersect(n, h) for n in names for h in vs.spec.hosts):
                continue
            ref = ObjectRef("VirtualService", vs.metadata.namespace or "", vs.metadata.name)
            for i, rule in enumerate(vs.spec.tcp):
                applies = not rule.match or any(
                    (not m.port or m.port == port) and (not m.gateways or binds(
                        vs, m.gateways, gw.namespace or "", gw.name)) for m in rule.match)
                if not applies:
                    continue
                weighted = builder.backends(vs, ref, f"spec.tcp[{i}]", rule.route)
                return (TlsRoute(sni=(), backends=tuple(b for b in weighted if b.weight > 0),
                                 source=ref),)
        return ()

    def _unique_sni(self, servers: list[Server]) -> list[Server]:
        """Each SNI name leads to one filter chain: a passthrough route for a name a terminating
        server (or an earlier route) has is dropped, with a warning, as Envoy would refuse the
        whole listener otherwise. `*` is the chain for any name."""
        taken = {name for s in servers if s.tls is not None for name in s.sni or ("*",)}
        out = []
        for server in servers:
            if server.key.protocol != "tls" or server.tls is not None:
                out.append(server)  # a TLS server ending here has the chain of its hosts
                continue
            routes = []
            for route in server.passthrough:
                clash = sorted(set(route.sni) & taken)
                for name in clash:
                    self.diagnostics.append(Diagnostic(
                        route.source, "spec.tls", "DuplicateHost",
                        f"SNI {name} on port {server.key.port} is already routed; this tls "
                        "route does not take it", Severity.WARNING))
                kept = tuple(n for n in route.sni if n not in taken)
                taken.update(kept)
                if kept:
                    routes.append(replace(route, sni=kept))
            if not routes:
                # No chain to make; a listener of such servers alone would have none at all.
                for ref in server.sources:
                    self.diagnostics.append(Diagnostic(
                        ref, "spec.servers", "NoRoutes",
                        f"passthrough server {server.key.port_name} on port {server.key.port} "
                        "has no VirtualService tls route; nothing is passed through",
                        Severity.WARNING))
                continue
            out.append(replace(server, passthrough=tuple(routes)))
        return out

    def _tls_virtual_hosts(self, entry: _Entry) -> tuple[VirtualHost, ...]:
        vhost_routes: dict[str, list[Route]] = {}
        for host, routes in self._bound_routes(entry, entry.server.hosts):
            vhost_routes.setdefault(host, []).extend(routes)
        return self._virtual_hosts(vhost_routes, entry.server.port.number, set())

    def _tls_policy(self, entry: _Entry) -> TlsPolicy | None:
        tls = entry.server.tls
        assert tls is not None
        at = f"{entry.at}.tls"
        try:
            certs, ca = self._policy_credentials(entry, tls, at)
        except FieldError as exc:
            self.problem(entry, exc.field, exc.code, f"server not programmed: {exc}")
            return None
        for cert in certs:
            self.tls_credentials[cert.name] = cert
            if cert.ocsp_problem and cert.source is not None:
                self.diagnostics.append(Diagnostic(
                    cert.source, "tls.ocsp-staple", "OcspStaple",
                    f"not stapled: {cert.ocsp_problem}", Severity.WARNING))
        if ca is not None:
            self.ca_credentials[ca.name] = ca
        return TlsPolicy(
            mode=TlsMode(tls.mode.value),
            certificates=tuple(c.name for c in certs),
            ca=ca.name if ca else None,
            min_version=TLS_VERSIONS.get(tls.min_protocol_version),
            max_version=TLS_VERSIONS.get(tls.max_protocol_version),
            cipher_suites=self._known(entry, f"{at}.cipherSuites", tls.cipher_suites,
                                      validation.ISTIO_CIPHER_SUITES, "cipher suite"),
            ecdh_curves=self._known(entry, f"{at}.ecdhCurves", tls.ecdh_curves,
                                    SERVED_CURVES, "ECDH curve"),
            subject_alt_names=tuple(tls.subject_alt_names),
            verify_spki=tuple(tls.verify_certificate_spki),
            verify_hash=tuple(tls.verify_certificate_hash),
            skip_verify=bool(tls.insecure_skip_verify),
            ticket_keys=self.tickets.name if self.tickets is not None else None,
        )

    def _policy_credentials(self, entry: _Entry, tls: istio.ServerTLSSettings, at: str
                            ) -> tuple[list[TlsCredential], CaCredential | None]:
        """The server's certificates (from Secrets or files) and, for mutual TLS, its client
        CA: `caCertCredentialName`, else a `caCertificates` file, else the credential's own
        CA; a `caCrl` file adds to the CA's revocation list."""
        pairs = files.server_pairs(tls)
        names_field = "credentialName" if tls.credential_name else "credentialNames"
        raw_names = [tls.credential_name] if tls.credential_name else list(tls.credential_names)
        if self.lookup is None:
            self.lookup = credentials.SecretLookup(self.res.secrets, self.workload.namespace)
        lookup = self.lookup
        names: list[str] = []
        if raw_names:
            for sub, _, _ in pairs:
                self.problem(entry, f"{at}.{sub + '.' if sub else ''}serverCertificate", "Ignored",
                             f"ignored: the certificate comes from {names_field}",
                             Severity.WARNING)
            with field_errors(f"{at}.{names_field}"):
                # A Gateway API listener's certificateRefs may name another namespace's
                # Secret (the conversion checked the ReferenceGrant); an Istio Gateway's may not.
                granted = entry.gateway.metadata.name.endswith(GENERATED)
                names = [credentials.credential_name(n, granted) for n in raw_names]
                certs = [self._tls_credential(lookup, n) for n in names]
        else:
            certs = [self._file_pair(f"{at}.{sub + '.' if sub else ''}", cert, key)
                     for sub, cert, key in pairs]
        for k, entry_cert in enumerate(tls.tls_certificates):
            if entry_cert.ca_certificates:
                self.problem(entry, f"{at}.tlsCertificates[{k}].caCertificates", "Ignored",
                             "ignored: the client CA is tls.caCertificates (or a credential's)",
                             Severity.WARNING)
        if tls.mode not in (istio.TLSMode.MUTUAL, istio.TLSMode.OPTIONAL_MUTUAL):
            return certs, None
        ca: CaCredential | None = None
        if tls.ca_cert_credential_name:
            with field_errors(f"{at}.caCertCredentialName"):
                base = credentials.credential_name(
                    tls.ca_cert_credential_name,
                    entry.gateway.metadata.name.endswith(GENERATED))
                ca = self._ca_credential(lookup, base.removesuffix(credentials.CA_SUFFIX))
        elif tls.ca_certificates:
            return certs, self._file_ca(f"{at}.caCertificates", tls.ca_certificates,
                                        f"{at}.caCrl", tls.ca_crl or "")
        elif names:
            with field_errors(f"{at}.{names_field}"):
                ca = self._ca_credential(lookup, names[0])
        if ca is None:
            raise FieldError(f"{at}.caCertificates", "mutual TLS needs a client CA")
        if tls.ca_crl:
            crl = self._file_bytes(f"{at}.caCrl", tls.ca_crl).reveal()
            with field_errors(f"{at}.caCrl"):
                ca = credentials.with_crl(ca, f"{ca.name}~{files.ca_name('', tls.ca_crl)}", crl)
        return certs, ca

    def _file_bytes(self, at: str, path: str) -> PrivateBytes:
        reason = files.confinement_problem(path, self.options.cert_dirs)
        if reason:
            raise FieldError(at, reason)
        read = self.res.files.get(path)
        if read is None or read.data is None:
            raise FieldError(at, f"{path}: {read.error if read else 'not read yet'}")
        return read.data

    def _file_pair(self, at: str, cert_path: str, key_path: str,
                   cert_field: str = "serverCertificate") -> TlsCredential:
        chain = self._file_bytes(f"{at}{cert_field}", cert_path)
        key = self._file_bytes(f"{at}privateKey", key_path)
        staple = self.res.files.get(files.staple_path(cert_path))
        staple_bytes = staple.data.reveal() if staple is not None and staple.data else None
        name = files.pair_name(cert_path, key_path)
        with field_errors(f"{at}{cert_field}"):
            return self.memo.get(
                ("file-pair", id(chain), id(key), staple_bytes),
                lambda: credentials.file_tls_credential(name, cert_path, chain.reveal(), key,
                                                        staple_bytes),
                pins=(chain, key))

    def _file_ca(self, at: str, path: str, crl_at: str, crl_path: str) -> CaCredential:
        bundle = self._file_bytes(at, path).reveal()
        crl = self._file_bytes(crl_at, crl_path).reveal() if crl_path else None
        with field_errors(at):
            return credentials.file_ca_credential(files.ca_name(path, crl_path), path, bundle,
                                                  crl)

    def _tls_credential(self, lookup: credentials.SecretLookup, name: str) -> TlsCredential:
        """Checked once per Secret object: parsing PEM is the costliest step of translation."""
        secret = lookup.get(name)
        result = self.memo.get(("tls", lookup.namespace, name, id(secret)),
                               lambda: _outcome(credentials.tls_credential, lookup, name),
                               pins=secret)
        if isinstance(result, CredentialError):
            raise result
        return result

    def _ca_credential(self, lookup: credentials.SecretLookup, base: str) -> CaCredential:
        separate, same = lookup.get(base + credentials.CA_SUFFIX), lookup.get(base)
        result = self.memo.get(("ca", lookup.namespace, base, id(separate), id(same)),
                               lambda: _outcome(credentials.ca_credential, lookup, base),
                               pins=(separate, same))
        if isinstance(result, CredentialError):
            raise result
        return result

    def _known(self, entry: _Entry, at: str, names: list[str], known: frozenset[str],
               what: str) -> tuple[str, ...]:
        """Keep the names Envoy accepts, once each; `[a|b]` groups are checked member by
        member."""
        kept: list[str] = []
        for i, name in enumerate(names):
            members = name[1:-1].split("|") if name.startswith("[") and name.endswith("]") else [
                name]
            if not all(m in known for m in members):
                self.problem(entry, f"{at}[{i}]", "Ignored",
                             f"unsupported {what} {name!r} ignored", Severity.WARNING)
            elif name not in kept:
                kept.append(name)
        return tuple(kept)

    # -- virtual hosts ------------------------------------------------------------------------

    def _bound_to(self, namespace: str, name: str) -> list[istio.VirtualService]:
        """VirtualServices naming one Gateway, oldest first (Istio's merge order); sorted once
        per Gateway and translation, from the index the resources keep."""
        index = self._vs_index
        ref = (namespace, name)
        if ref not in index:
            bound = [(k, self.res.virtual_services[k]) for k in self.res.vs_by_gateway.get(ref, ())]
            index[ref] = [vs for _, vs in sorted(
                bound, key=lambda i: (i[1].metadata.creation_timestamp or "", i[0]))
                if self._visible(vs)]
        return index[ref]

    def _visible(self, vs: istio.VirtualService) -> bool:
        """Istio's `exportTo`: a gateway sees the VirtualServices exported to its own namespace
        (`.` is the VirtualService's namespace; none given: every namespace)."""
        export = vs.spec.export_to
        if not export or "*" in export:
            return True
        mine = self.workload.namespace
        return mine in export or ("." in export and (vs.metadata.namespace or "") == mine)

    def _bound_routes(self, entry: _Entry, server_hosts: list[str]
                      ) -> list[tuple[str, list[Route]]]:
        """Routes of every VirtualService bound to this server, per intersecting host."""
        gw = entry.gateway.metadata
        builder = self._route_builder(self.diagnostics)
        out: list[tuple[str, list[Route]]] = []
        for vs in self._bound_to(gw.namespace or "", gw.name):
            matched: list[str] = []
            for name in bindable_hosts(entry.gateway, server_hosts, vs):
                for vs_host in vs.spec.hosts:
                    both = hosts.intersect(name, vs_host)
                    if both is not None and both not in matched:
                        matched.append(both)
            if not matched:
                continue
            out.extend((h, self._routes(builder, vs, gw.namespace or "", gw.name,
                                        entry.server.port.number)) for h in matched)
        return out

    def _route_builder(self, diagnostics: list[Diagnostic]) -> RouteBuilder:
        return RouteBuilder(self.res, diagnostics, self.workload.namespace,
                            client_port=self.options.bind_port)

    def _routes(self, builder: RouteBuilder, vs: istio.VirtualService, namespace: str,
                name: str, port: int) -> list[Route]:
        """A VirtualService's routes for one Gateway, reused while the object is the same and
        no destination needed a Service's default port (which other objects decide)."""
        def compute() -> tuple[list[Route], list[Diagnostic], bool]:
            scratch = self._route_builder([])
            routes = scratch.routes(vs, namespace, name, port)
            return routes, scratch.diagnostics, scratch.depends_on_others

        routes, diagnostics, depends = self.memo.get(("routes", id(vs), namespace, name, port),
                                                     compute, pins=vs)
        if depends:
            routes, diagnostics, _ = compute()
        builder.diagnostics.extend(diagnostics)
        return routes

    def _virtual_hosts(self, by_host: dict[str, list[Route]], port: int,
                       redirect_hosts: set[str]) -> tuple[VirtualHost, ...]:
        if not by_host:
            return (VirtualHost(host="blackhole", port=port, domains=("*",), routes=()),)
        out = []
        for host in sorted(by_host, key=hosts.specificity):
            routes = by_host[host]
            if all(r.source.name.endswith(GENERATED) for r in routes):  # HTTPRoutes only
                ordered = precedence.ordered(routes)
            else:
                ordered = [r for r in routes if not is_catch_all(r)] + [
                    r for r in routes if is_catch_all(r)]
            out.append(VirtualHost(host=host, port=port, domains=(host,), routes=tuple(ordered),
                                   require_tls=host in redirect_hosts))
        return tuple(out)

    # -- backends -----------------------------------------------------------------------------

    @staticmethod
    def _referenced_backends(listeners: list[Listener]) -> set[BackendRef]:
        refs: set[BackendRef] = set()
        for listener in listeners:
            for server in listener.servers:
                refs.update(server_backends(server))
        return refs

    def _backend(self, ref: BackendRef) -> Backend | None:
        backend = backends.resolve(self.res, replace(ref, subset=""))
        if backend is not None:
            backend = replace(backend, ref=ref)
        if backend is None:
            for vs_ref, at, _ in self._destination_index().get(ref.host, []):
                self.diagnostics.append(Diagnostic(
                    vs_ref, f"{at}.host", "NotFound",
                    f"no Service or ServiceEntry for {ref.host} port {ref.port}; "
                    "requests routed there get 503", Severity.WARNING))
            return None
        rule = policies.rule_for(self.res.rules_for_host(ref.host), ref.host,
                                 self.workload.namespace) if self.res.destination_rules else None
        if ref.subset:
            labels = policies.subset_labels(rule, ref.subset) if rule is not None else None
            if labels is None:
                for vs_ref, at, subset in self._destination_index().get(ref.host, []):
                    if subset != ref.subset:
                        continue
                    self.diagnostics.append(Diagnostic(
                        vs_ref, f"{at}.subset", "NotFound",
                        f"no DestinationRule for {ref.host} defines subset {ref.subset}; "
                        "requests routed there get 503", Severity.WARNING))
                return None
            chosen = tuple(e for e in backend.endpoints
                           if all(dict(e.labels).get(k) == v for k, v in labels.items()))
            if backend.endpoints and not chosen:
                wanted = ", ".join(f"{k}={v}" for k, v in sorted(labels.items()))
                self._no_endpoints(ref, f"none of the {len(backend.endpoints)} endpoints of "
                                        f"{ref.host} carries subset {ref.subset}'s labels {wanted}")
            backend = replace(backend, endpoints=chosen)
        if not backend.endpoints and not backend.dns:
            self._no_endpoints(ref, backends.why_empty(self.res, backend))
        if rule is None:
            return backend
        policy, tls = policies.policy(rule, ref.port, ref.subset)
        if tls is not None:
            upstream = self._upstream_tls(rule, tls)
            if upstream is None:  # fail closed: no endpoint is sent to without its TLS
                return replace(backend, endpoints=(), policy=policy)
            policy = replace(policy, tls=upstream)
        return replace(backend, policy=policy)

    def _no_endpoints(self, ref: BackendRef, reason: str) -> None:
        for vs_ref, at, subset in self._destination_index().get(ref.host, []):
            if subset == ref.subset:
                self.diagnostics.append(Diagnostic(
                    vs_ref, at, "NoEndpoints",
                    f"{reason}; requests routed there get 503 no healthy upstream",
                    Severity.WARNING))

    def _upstream_tls(self, rule: istio.DestinationRule, tls: istio.ClientTLSSettings
                      ) -> UpstreamTls | None:
        """The credentials of a DestinationRule's TLS: a Secret of the gateway's namespace (as
        Istio reads `credentialName` at a gateway), or files mounted in the gateway
        (`clientCertificate`, `privateKey`, `caCertificates`, under `--cert-dir`); None with
        the reason reported."""
        ref = ObjectRef("DestinationRule", rule.metadata.namespace or "", rule.metadata.name)
        at = next((a for a, t in files.client_tls_settings(rule) if t is tls), "spec")
        try:
            certificate, ca = (self._upstream_secrets(at, tls, rule) if tls.credential_name
                               else self._upstream_files(at, tls))
        except FieldError as exc:
            self.diagnostics.append(Diagnostic(
                ref, exc.field, exc.code, f"{exc}; requests to this destination get 503"))
            return None
        if certificate is not None:
            self.tls_credentials[certificate.name] = certificate
        if ca is not None:
            self.ca_credentials[ca.name] = ca
        return policies.upstream_tls(tls, certificate.name if certificate else None,
                                     ca.name if ca else None)

    def _upstream_secrets(self, at: str, tls: istio.ClientTLSSettings,
                          rule: istio.DestinationRule
                          ) -> tuple[TlsCredential | None, CaCredential | None]:
        if self.lookup is None:
            self.lookup = credentials.SecretLookup(self.res.secrets, self.workload.namespace)
        with field_errors(f"{at}.credentialName"):
            # A BackendTLSPolicy's CA is in the policy's namespace, not the gateway's.
            raw = tls.credential_name or ""
            if rule.metadata.name.endswith(GENERATED) and "://" not in raw:
                raw = f"{credentials.GATEWAY_PREFIX}{rule.metadata.namespace}/{raw}"
            name = credentials.credential_name(raw, rule.metadata.name.endswith(GENERATED))
            certificate = (self._tls_credential(self.lookup, name) if tls.mode == "MUTUAL"
                           else None)
            ca = None if tls.insecure_skip_verify else self._ca_credential(self.lookup, name)
        return certificate, ca

    def _upstream_files(self, at: str, tls: istio.ClientTLSSettings
                        ) -> tuple[TlsCredential | None, CaCredential | None]:
        """A CA file only (SIMPLE; without one, the system's trust store verifies), and a
        certificate/key pair for MUTUAL."""
        certificate = None
        if tls.mode == "MUTUAL":
            if not (tls.client_certificate and tls.private_key):
                raise FieldError(f"{at}.credentialName", "MUTUAL needs credentialName, or "
                                 "clientCertificate and privateKey")
            certificate = self._file_pair(f"{at}.", tls.client_certificate, tls.private_key,
                                          "clientCertificate")
        ca = None
        if tls.ca_certificates and not tls.insecure_skip_verify:
            ca = self._file_ca(f"{at}.caCertificates", tls.ca_certificates, f"{at}.caCrl",
                               tls.ca_crl or "")
        return certificate, ca

    def _destination_index(self) -> dict[str, list[tuple[ObjectRef, str, str]]]:
        """Where each destination host is named (and with which subset), to point warnings at
        the right fields."""
        if self._dest_index is None:
            index: dict[str, list[tuple[ObjectRef, str, str]]] = defaultdict(list)
            for vs in self.res.virtual_services.values():
                namespace = vs.metadata.namespace or "default"
                ref = ObjectRef("VirtualService", namespace, vs.metadata.name)
                named: list[tuple[str, int, Sequence[istio.HTTPRouteDestination
                                                     | istio.RouteDestination]]]
                named = [("http", i, rule.route) for i, rule in enumerate(vs.spec.http)]
                named += [("tls", i, rule.route) for i, rule in enumerate(vs.spec.tls)]
                named += [("tcp", i, rule.route) for i, rule in enumerate(vs.spec.tcp)]
                for kind, i, route in named:
                    for k, dest in enumerate(route):
                        host = hosts.qualify(dest.destination.host, namespace)
                        index[host].append((ref, f"spec.{kind}[{i}].route[{k}].destination",
                                            dest.destination.subset or ""))
            self._dest_index = index
        return self._dest_index


def _outcome(function: Callable[[credentials.SecretLookup, str], C],
             lookup: credentials.SecretLookup, name: str) -> C | CredentialError:
    """A credential, or the reason it cannot be used (kept in the memo like a value)."""
    try:
        return function(lookup, name)
    except CredentialError as exc:
        return exc


def _with_misdirected(servers: list[Server]) -> list[Server]:
    """Each TLS server with the hosts the other servers of its port serve. A browser reuses an
    HTTP/2 connection for any host its certificate covers (connection coalescing); a request for
    another server's host on this server's connection is then misdirected, and is answered so
    (HTTP 421) rather than "not found", so the client opens a connection for that host.

    Every server names every other server's hosts, so the lists grow with the square of the
    servers on the port: above MISDIRECTED_LIMIT servers none is kept (such requests get 404,
    as in Istio; servers sharing a credential still share a connection and are routed)."""
    if len(servers) < 2 or len(servers) > MISDIRECTED_LIMIT:
        return servers
    hosts = {s.key: set(s.sni or ("*",)) for s in servers}
    out = []
    for server in servers:
        if server.tls is None or server.key.protocol != "https":
            out.append(server)  # no HTTP on its connections
            continue
        others = set().union(*(h for k, h in hosts.items() if k != server.key))
        out.append(replace(server, misdirected_hosts=tuple(sorted(others - hosts[server.key]))))
    return out


def server_backends(server: Server) -> set[BackendRef]:
    """Every backend a server's routes forward to."""
    refs: set[BackendRef] = set()
    for vhost in server.virtual_hosts:
        for route in vhost.routes:
            if isinstance(route.action, Forward):
                refs.update(b.backend for b in route.action.backends)
                refs.update(m.backend for m in route.action.mirrors)
    for tls_route in server.passthrough:
        refs.update(b.backend for b in tls_route.backends)
    return refs


def _indexes(config: GatewayConfig) -> tuple[dict[tuple[str, str], tuple[tuple[int, int], ...]],
                                             frozenset[tuple[str, str]], dict[BackendRef, int]]:
    positions: dict[tuple[str, str], list[tuple[int, int]]] = defaultdict(list)
    plain: set[tuple[str, str]] = set()
    counts: dict[BackendRef, int] = defaultdict(int)
    for li, listener in enumerate(config.listeners):
        for si, server in enumerate(listener.servers):
            table = server.key
            if table.protocol == "https":
                positions[(table.namespace, table.gateway)].append((li, si))
            else:  # plain HTTP (one table per port) and passthrough: translated whole
                plain.update((ref.namespace, ref.name) for ref in server.sources)
            for ref in server_backends(server):
                counts[ref] += 1
    return {k: tuple(v) for k, v in positions.items()}, frozenset(plain), dict(counts)


def to_ir(res: Resources, workload: Workload | None = None,
          options: Options | None = None, memo: Memo | None = None) -> IrResult:
    res = with_gateway_api(res)
    translation = _Translation(res, workload or Workload(), options or Options(),
                               memo=memo or Memo())
    config = translation.run()
    deps = frozenset(translation.lookup.consulted) if translation.lookup else frozenset()
    positions, plain, counts = _indexes(config)
    found = {original(d, res) for d in translation.diagnostics}
    return IrResult(config, tuple(sorted(found)), deps,
                    _vs_gateways(res, res.virtual_services), positions, plain, counts)


def _vs_gateways(res: Resources, keys: Iterable[tuple[str, str]]
                 ) -> dict[tuple[str, str], frozenset[tuple[str, str]]]:
    out = {}
    for key in keys:
        vs = res.virtual_services.get(key)
        if vs is not None:
            out[key] = frozenset(gateway_refs(vs, vs.spec.gateways))
    return out


def server_of(res: Resources, key: ServerKey) -> tuple[istio.Gateway, int] | None:
    """The Gateway, and the index in it, of the server a TLS server key was made of."""
    gateway = res.gateways.get((key.namespace, key.gateway))
    if gateway is None:
        return None
    index = next((i for i, s in enumerate(gateway.spec.servers)
                  if s.port.name == key.port_name and s.port.number == key.port), None)
    return (gateway, index) if index is not None else None


def refresh_routes(previous: IrResult, res: Resources, workload: Workload, options: Options,
                   changed: set[tuple[str, str]], memo: Memo | None = None
                   ) -> tuple[IrResult, dict[ServerKey, tuple[Server, Server]]] | None:
    """The result of a full translation after the VirtualServices `changed` (namespace, name)
    changed, computed by re-translating only the servers of the Gateways they name (before
    and now), or None when only a full translation can tell (plain HTTP servers, which share
    one route table per port).

    A route edit at 10,000 hosts then costs what one server costs, plus the linear index work.
    """
    res = with_gateway_api(res)  # the generated VirtualServices' destinations are warned of too
    for key in changed:
        vs = res.virtual_services.get(key)
        was_delegate = key in previous.vs_gateways and not previous.vs_gateways[key]
        if was_delegate or (vs is not None and not vs.spec.hosts):
            return None  # a delegate (before or now): which roots name it is not indexed
    translation = _Translation(res, workload, options, memo=memo or Memo())
    affected: set[tuple[str, str]] = set()
    now = _vs_gateways(res, changed)
    for key in changed:
        affected |= previous.vs_gateways.get(key, frozenset()) | now.get(key, frozenset())
    if affected & previous.plain_gateways:
        return None
    listeners = list(previous.config.listeners)
    servers_of: dict[int, list[Server]] = {}
    retranslated: dict[ServerKey, tuple[Server, Server]] = {}
    counts = previous.backend_refs
    for gateway_key in sorted(affected):
        for li, si in previous.gateway_servers.get(gateway_key, ()):
            servers = servers_of.setdefault(li, list(listeners[li].servers))
            server = servers[si]
            table = server.key
            found = server_of(res, table)
            if found is None:
                return None
            gateway, index = found
            entry = _Entry(gateway, index, gateway.spec.servers[index])
            refreshed = replace(server, virtual_hosts=translation._tls_virtual_hosts(entry))
            retranslated[table] = (server, refreshed)
            servers[si] = refreshed
            before, after = server_backends(server), server_backends(refreshed)
            if before != after:
                if counts is previous.backend_refs:
                    counts = dict(counts)
                for ref in before - after:
                    counts[ref] -= 1
                    if not counts[ref]:
                        del counts[ref]
                for ref in after - before:
                    counts[ref] = counts.get(ref, 0) + 1
    for li, servers in servers_of.items():
        listeners[li] = replace(listeners[li], servers=tuple(servers))
    # Backends only depend on Services and ServiceEntries, which did not change; destination
    # warnings depend on the whole route set, so they are made again for what is routed now.
    notes, translation.diagnostics = translation.diagnostics, []
    backends = previous.config.backends
    dangling = [d for d in previous.diagnostics if d.code in DESTINATION_CODES]
    if counts is not previous.backend_refs or dangling:
        known = {b.ref: b for b in previous.config.backends}
        resolved = []
        for ref in sorted(counts, key=lambda r: (r.host, r.port, r.subset)):
            backend = known.get(ref)
            if backend is None or not backend.endpoints:  # warned about again, if still so
                backend = translation._backend(ref)
            if backend is not None:
                resolved.append(backend)
        backends = tuple(resolved)
    notes.extend(original(d, res) for d in translation.diagnostics)
    changed_refs = {ObjectRef("VirtualService", ns, name) for ns, name in changed}
    kept = [d for d in previous.diagnostics
            if d.object not in changed_refs and d.code not in DESTINATION_CODES]
    config = replace(previous.config, listeners=tuple(listeners), backends=backends)
    vs_gateways = with_changes(previous.vs_gateways, now, changed - set(now))
    diagnostics = previous.diagnostics
    if kept != list(previous.diagnostics) or notes:
        diagnostics = tuple(sorted(set(kept) | set(notes)))
    return IrResult(config, diagnostics, previous.secret_deps, vs_gateways,
                    previous.gateway_servers, previous.plain_gateways, counts), retranslated


def refresh_credentials(previous: IrResult, secrets: dict[tuple[str, str], core.Secret],
                        workload: Workload, changed: set[str]) -> IrResult | None:
    """The result of a full translation after Secrets named `changed` (in the gateway's
    namespace) changed, computed from the previous one, or None when only a full translation
    can tell (a server may start or stop being programmed).

    Rotation is the common change; this makes its cost independent of the number of hosts: each
    credential is found and replaced by name in the sorted tuples, nothing else is visited.
    `secrets` needs to hold only the Secrets named in `changed` and their `-cacert` partners.
    """
    relevant = changed & previous.secret_deps
    if not relevant:
        return previous
    lookup = credentials.SecretLookup(secrets, workload.namespace)
    config = previous.config
    tls, cas = config.tls_credentials, config.ca_credentials
    covered: set[str] = set()
    try:
        for name in sorted(relevant):
            if config.credential(name) is not None:
                tls = with_named(tls, name, credentials.tls_credential(lookup, name))
                covered.add(name)
            base = name.removesuffix(credentials.CA_SUFFIX)
            ca_name = base + credentials.CA_SUFFIX
            if _has_prefix(cas, ca_name + "~"):
                return None  # a CA combined with a CRL file: made again whole
            if config.ca_credential(ca_name) is not None:
                cas = with_named(cas, ca_name, credentials.ca_credential(lookup, base))
                covered.update({base, ca_name} & relevant)
    except CredentialError:
        return None  # a programmed server would stop being programmed
    if relevant - covered:
        return None  # a Secret some server looked for and did not use may now be usable
    config = replace(config, tls_credentials=tls, ca_credentials=cas)
    return replace(previous, config=config)


def _has_prefix(items: tuple[CaCredential, ...], prefix: str) -> bool:
    index = bisect.bisect_left(items, prefix, key=lambda c: c.name)
    return index < len(items) and items[index].name.startswith(prefix)
