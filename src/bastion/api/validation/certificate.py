"""cert-manager's admission rules for Certificates and Issuers (its webhook's), so YAML
cert-manager refuses is refused here, with the field named."""

from __future__ import annotations

import re
from collections.abc import Iterator

from bastion.api.certmanager import Certificate, ClusterIssuer, Issuer
from bastion.api.validation.names import is_ip
from bastion.api.validation.problem import Problem, warn

# Go's time.ParseDuration, as cert-manager reads `duration` and `renewBefore`.
GO_DURATION = re.compile(r"^(?:(\d+(?:\.\d+)?)(h|m|s|ms|us|µs|ns))+$")
GO_PART = re.compile(r"(\d+(?:\.\d+)?)(h|m|s|ms|us|µs|ns)")
GO_UNIT = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}

MIN_DURATION_S = 3600  # cert-manager refuses a duration under 1h
MIN_RENEW_BEFORE_S = 300  # and a renewBefore under 5m
DEFAULT_DURATION_S = 90 * 24 * 3600  # 2160h

USAGES = frozenset({"signing", "digital signature", "content commitment", "key encipherment",
                    "key agreement", "data encipherment", "cert sign", "crl sign",
                    "encipher only", "decipher only", "any", "server auth", "client auth",
                    "code signing", "email protection", "s/mime", "ipsec end system",
                    "ipsec tunnel", "ipsec user", "timestamping", "ocsp signing",
                    "microsoft sgc", "netscape sgc"})
RSA_SIZES = range(2048, 8193)
ECDSA_SIZES = (256, 384, 521)


def go_duration_s(value: str) -> float | None:
    if not GO_DURATION.match(value.strip()):
        return None
    return sum(float(n) * GO_UNIT[u] for n, u in GO_PART.findall(value))


def certificate_problems(cert: Certificate) -> Iterator[Problem]:
    spec = cert.spec
    if not (spec.common_name or spec.dns_names or spec.uris or spec.email_addresses
            or spec.ip_addresses or spec.other_names or spec.literal_subject):
        yield Problem("spec", "at least one of commonName, dnsNames, uris, ipAddresses, "
                      "emailAddresses or otherNames must be set")
    if spec.common_name and len(spec.common_name) > 64:
        yield Problem("spec.commonName", "must be no more than 64 characters")
    for i, address in enumerate(spec.ip_addresses):
        if not is_ip(address):
            yield Problem(f"spec.ipAddresses[{i}]", f"{address!r} is not an IP address")
    if spec.issuer_ref.group == "cert-manager.io" and spec.issuer_ref.kind not in (
            "Issuer", "ClusterIssuer"):
        yield Problem("spec.issuerRef.kind", "must be one of Issuer or ClusterIssuer")
    duration = DEFAULT_DURATION_S
    if spec.duration is not None:
        parsed = go_duration_s(spec.duration)
        if parsed is None:
            yield Problem("spec.duration", f"invalid duration {spec.duration!r} (e.g. 2160h)")
        elif parsed < MIN_DURATION_S:
            yield Problem("spec.duration", "certificate duration must be greater than 1h0m0s")
        else:
            duration = int(parsed)
    if spec.renew_before is not None and spec.renew_before_percentage is not None:
        yield Problem("spec.renewBefore", "renewBefore and renewBeforePercentage are mutually "
                      "exclusive")
    if spec.renew_before is not None:
        before = go_duration_s(spec.renew_before)
        if before is None:
            yield Problem("spec.renewBefore", f"invalid duration {spec.renew_before!r}")
        elif before < MIN_RENEW_BEFORE_S:
            yield Problem("spec.renewBefore",
                          "certificate renewBefore must be greater than 5m0s")
        elif before >= duration:
            yield Problem("spec.renewBefore", f"certificate duration {spec.duration or '2160h'}"
                          f" must be greater than renewBefore {spec.renew_before}")
    if spec.renew_before_percentage is not None and not (
            0 < spec.renew_before_percentage < 100):
        yield Problem("spec.renewBeforePercentage", "must be between 0 and 100, exclusive")
    key = spec.private_key
    if key is not None:
        yield from _private_key_problems(key.algorithm, key.size, key.encoding,
                                         key.rotation_policy)
    for i, usage in enumerate(spec.usages):
        if usage not in USAGES:
            yield Problem(f"spec.usages[{i}]", f"unknown key usage {usage!r}")
    for field, value in (("keystores", spec.keystores), ("nameConstraints",
                         spec.name_constraints), ("otherNames", spec.other_names),
                         ("additionalOutputFormats", spec.additional_output_formats)):
        if value:
            yield warn(f"spec.{field}", "not implemented by bastion; ignored")


def _private_key_problems(algorithm: str, size: int | None, encoding: str,
                          rotation: str) -> Iterator[Problem]:
    at = "spec.privateKey"
    if algorithm == "RSA" and size is not None and size not in RSA_SIZES:
        yield Problem(f"{at}.size", "must be between 2048 and 8192 for rsa keyAlgorithm")
    elif algorithm == "ECDSA" and size is not None and size not in ECDSA_SIZES:
        yield Problem(f"{at}.size", "must be either 256, 384 or 521 for ecdsa keyAlgorithm")
    elif algorithm not in ("RSA", "ECDSA", "Ed25519"):
        yield Problem(f"{at}.algorithm", "must be either empty or one of rsa, ecdsa or ed25519")
    if encoding not in ("PKCS1", "PKCS8"):
        yield Problem(f"{at}.encoding", "must be either PKCS1 or PKCS8")
    if rotation not in ("Never", "Always"):
        yield Problem(f"{at}.rotationPolicy", "must be either Never or Always")


def issuer_problems(issuer: Issuer | ClusterIssuer) -> Iterator[Problem]:
    spec = issuer.spec
    kinds = [k for k, v in (("selfSigned", spec.self_signed), ("ca", spec.ca),
                            ("acme", spec.acme), ("vault", spec.vault),
                            ("venafi", spec.venafi)) if v is not None]
    if not kinds:
        yield Problem("spec", "at least one issuer type must be configured (selfSigned, ca or "
                      "acme)")
    elif len(kinds) > 1:
        yield Problem(f"spec.{kinds[1]}", "may not specify more than one issuer type")
    for unsupported in ("vault", "venafi"):
        if unsupported in kinds:
            yield warn(f"spec.{unsupported}", "not implemented by bastion: the issuer will not "
                       "become Ready")
    acme = spec.acme
    if acme is None:
        return
    if not acme.server.startswith("https://"):
        yield Problem("spec.acme.server", "must be an https:// URL")
    if acme.skip_tls_verify and acme.ca_bundle:
        yield Problem("spec.acme.caBundle", "caBundle and skipTLSVerify are mutually exclusive")
    if acme.external_account_binding:
        yield warn("spec.acme.externalAccountBinding", "not implemented by bastion; ignored")
    for i, solver in enumerate(acme.solvers):
        if solver.http01 is None and solver.dns01 is not None:
            yield warn(f"spec.acme.solvers[{i}].dns01", "not implemented by bastion: only "
                       "http01 (through the gateway) solves challenges")
        elif solver.http01 is None:
            yield Problem(f"spec.acme.solvers[{i}]", "no solver type configured")
