"""Istio's admission rules for Gateways: server hosts, ports, binds and the TLS settings, with
Istio's verdicts (refused, or accepted with a warning)."""

from __future__ import annotations

from collections.abc import Iterator

from bastion.api.istio import Gateway, Server, ServerTLSSettings, TLSMode, TLSProtocol
from bastion.api.validation.names import gateway_host_problems, is_dns_label, is_ip
from bastion.api.validation.problem import Problem, warn
from bastion.api.validation.values import port_problem

PROTOCOLS = frozenset({"HTTP", "HTTPS", "GRPC", "GRPC-WEB", "HTTP2", "MONGO", "TCP", "TLS",
                       "HTTP_PROXY", "REDIS", "MYSQL", "UDP"})
HTTP_PROTOCOLS = frozenset({"HTTP", "HTTP2", "GRPC", "GRPC-WEB", "HTTP_PROXY"})
TLS_PROTOCOLS = frozenset({"HTTPS", "TLS"})
UNIX_PREFIX = "unix://"
TERMINATING = (TLSMode.SIMPLE, TLSMode.MUTUAL, TLSMode.OPTIONAL_MUTUAL)
PASSTHROUGH_MODES = (TLSMode.PASSTHROUGH, TLSMode.AUTO_PASSTHROUGH)

# The cipher suites and ECDH curves Istio's validation knows (BoringSSL's names). Anything else
# is ignored with a warning, as Istio does.
ISTIO_CIPHER_SUITES = frozenset({
    "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305",
    "ECDHE-ECDSA-AES128-SHA", "ECDHE-RSA-AES128-SHA", "ECDHE-ECDSA-AES256-SHA",
    "ECDHE-RSA-AES256-SHA", "AES128-GCM-SHA256", "AES256-GCM-SHA384", "AES128-SHA",
    "AES256-SHA", "DES-CBC3-SHA",
})
ISTIO_ECDH_CURVES = frozenset({"P-224", "P-256", "P-384", "P-521", "X25519",
                               "X25519Kyber768Draft00", "X25519MLKEM768"})


def is_known_cipher(name: str) -> bool:
    """Istio lets through names it cannot check (`ALL`, or ones starting with an operator such
    as `-`, `+`, `!` or `[`) and the suites it knows."""
    return not name or name == "ALL" or not name[0].isalnum() or name in ISTIO_CIPHER_SUITES


def gateway_problems(gateway: Gateway) -> Iterator[Problem]:
    if not is_dns_label(gateway.metadata.name):
        yield Problem("metadata.name",
                      "a Gateway's name must be a DNS-1123 label (lower-case letters, digits, "
                      "'-'; no dots)")
    port_names: dict[str, int] = {}
    for i, server in enumerate(gateway.spec.servers):
        at = f"spec.servers[{i}]"
        for j, host in enumerate(server.hosts):
            for reason in gateway_host_problems(host):
                yield Problem(f"{at}.hosts[{j}]", reason)
        yield from _port_problems(at, server)
        yield from _bind_problems(at, server)
        protocol = server.port.protocol.upper()
        name = server.port.name
        if name and name in port_names:
            yield Problem(f"{at}.port.name",
                          f"port names in servers must be unique: {name!r} is already used by "
                          f"spec.servers[{port_names[name]}]")
        elif name:
            port_names[name] = i
        if server.tls is not None:
            yield from _tls_problems(f"{at}.tls", server.tls)
            if server.tls.https_redirect and protocol not in HTTP_PROTOCOLS:
                yield warn(f"{at}.tls.httpsRedirect",
                           "httpsRedirect should only be used on HTTP servers")
        yield from _protocol_tls_problems(at, protocol, server)


def _port_problems(at: str, server: Server) -> Iterator[Problem]:
    port = server.port
    if port.protocol.upper() not in PROTOCOLS:
        yield Problem(f"{at}.port.protocol",
                      f"invalid protocol {port.protocol!r}; supported: "
                      f"{', '.join(sorted(PROTOCOLS))}")
    if port.number > 0 or not (server.bind or "").startswith(UNIX_PREFIX):
        reason = port_problem(port.number)
        if reason:
            yield Problem(f"{at}.port.number", reason)
    if port.target_port:
        yield Problem(f"{at}.port.targetPort", "targetPort has no effect on Gateways")
    if not port.name:
        yield Problem(f"{at}.port.name", "required")


def _bind_problems(at: str, server: Server) -> Iterator[Problem]:
    bind = server.bind or ""
    if bind.startswith(UNIX_PREFIX):
        path = bind[len(UNIX_PREFIX):]
        if not path.startswith("@") and (not path.startswith("/") or path.endswith("/")):
            yield Problem(f"{at}.bind", f"{path!r} is not an absolute path to a unix socket")
        if server.port.number != 0:
            yield Problem(f"{at}.port.number", "must be 0 for a unix domain socket bind")
    elif bind and not is_ip(bind):
        yield Problem(f"{at}.bind", f"{bind!r} is not a valid IP address")


def _protocol_tls_problems(at: str, protocol: str, server: Server) -> Iterator[Problem]:
    tls = server.tls
    if protocol not in PROTOCOLS or not server.port.name:
        return  # Istio checks this only for a well-formed port
    if protocol in TLS_PROTOCOLS and tls is None:
        yield Problem(f"{at}.tls", f"required for protocol {protocol}")
    elif protocol not in TLS_PROTOCOLS and tls is not None:
        if protocol not in HTTP_PROTOCOLS:
            yield Problem(f"{at}.tls", f"TLS settings are not allowed for protocol {protocol}")
        elif (tls.mode not in PASSTHROUGH_MODES or tls.ca_certificates or tls.private_key
              or tls.server_certificate):
            yield Problem(f"{at}.tls",
                          "a plain-text HTTP server may only set httpsRedirect in tls")


def _tls_problems(at: str, tls: ServerTLSSettings) -> Iterator[Problem]:
    if tls.min_protocol_version in (TLSProtocol.TLSV1_0, TLSProtocol.TLSV1_1) and \
            not tls.cipher_suites:
        yield warn(f"{at}.minProtocolVersion",
                   "TLS versions below 1.2 need cipherSuites that support them (the default "
                   "suites do not)")
    yield from _cipher_problems(at, tls.cipher_suites)
    if tls.mode == TLSMode.ISTIO_MUTUAL:
        for field, value in (("serverCertificate", tls.server_certificate),
                             ("privateKey", tls.private_key),
                             ("caCertificates", tls.ca_certificates),
                             ("tlsCertificates", tls.tls_certificates),
                             ("credentialName", tls.credential_name),
                             ("credentialNames", tls.credential_names)):
            if value:
                yield Problem(f"{at}.{field}", "ISTIO_MUTUAL takes no certificates")
        return
    if tls.mode in PASSTHROUGH_MODES and (
            tls.ca_crl or tls.server_certificate or tls.private_key or tls.ca_certificates
            or tls.tls_certificates or tls.credential_name or tls.credential_names):
        yield warn(f"{at}.mode", f"{tls.mode} does not use certificates; they are ignored")
    sources = [bool(tls.server_certificate and tls.private_key), bool(tls.credential_name),
               bool(tls.credential_names), bool(tls.tls_certificates)]
    if sum(sources) > 1:
        yield Problem(at, "only one of credentialName, credentialNames, "
                          "serverCertificate/privateKey and tlsCertificates may be set")
    if tls.mode not in TERMINATING:
        if tls.ca_crl and tls.credential_name:
            yield Problem(f"{at}.caCrl", "with credentialName, the CRL must be in the Secret")
        return
    if tls.credential_name or tls.credential_names:
        return  # certificates come from Secrets; the file fields are not required
    prefix = "SIMPLE TLS" if tls.mode == TLSMode.SIMPLE else "MUTUAL TLS"
    if tls.mode != TLSMode.SIMPLE and not tls.ca_certificates:
        yield Problem(f"{at}.caCertificates", f"{prefix} requires a client CA bundle")
    if len(tls.tls_certificates) > 2:
        yield warn(f"{at}.tlsCertificates", f"{prefix} can use at most 2 server certificates")
    pairs = ([(f"{at}.tlsCertificates[{k}]", c.server_certificate, c.private_key)
              for k, c in enumerate(tls.tls_certificates)] if tls.tls_certificates
             else [(at, tls.server_certificate, tls.private_key)])
    for where, cert, key in pairs:
        if not cert:
            yield Problem(f"{where}.serverCertificate",
                          f"{prefix} requires a server certificate (or credentialName)")
        if not key:
            yield Problem(f"{where}.privateKey", f"{prefix} requires a private key")
    if tls.ca_crl and tls.mode == TLSMode.SIMPLE:
        yield Problem(f"{at}.caCrl", "a CRL has no use with SIMPLE TLS")


def _cipher_problems(at: str, suites: list[str]) -> Iterator[Problem]:
    invalid, seen, duplicate = set(), set(), set()
    for suite in suites:
        if not is_known_cipher(suite):
            invalid.add(suite)
        elif suite in seen:
            duplicate.add(suite)
        seen.add(suite)
    if invalid:
        yield warn(f"{at}.cipherSuites",
                   f"ignoring invalid cipher suites: {', '.join(sorted(invalid))}")
    if duplicate:
        yield warn(f"{at}.cipherSuites",
                   f"ignoring duplicate cipher suites: {', '.join(sorted(duplicate))}")
