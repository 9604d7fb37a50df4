"""cert-manager's API (`cert-manager.io/v1`: Issuer, ClusterIssuer, Certificate) and the
ACME objects its controller keeps (`acme.cert-manager.io/v1`: Order, Challenge), as bastion
serves them. Fields bastion does not act on are accepted where cert-manager's schema has them,
so existing YAML applies unchanged; admission says which are ignored."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from bastion.api.base import ObjectMeta, lenient, strict
from bastion.api.kinds import CERT_MANAGER


@strict
class SecretKeySelector:
    name: str = Field(min_length=1)
    key: str | None = None


@strict
class SelfSignedIssuer:
    crl_distribution_points: list[str] = Field(default_factory=list)


@strict
class CAIssuer:
    secret_name: str = Field(min_length=1)
    crl_distribution_points: list[str] = Field(default_factory=list)
    ocsp_servers: list[str] = Field(default_factory=list)
    issuing_certificate_urls: list[str] = Field(default_factory=list,
                                                alias="issuingCertificateURLs")


@lenient
class ChallengeSolver:
    """An ACME solver: bastion solves `http01` itself, through its gateway, whatever the
    `http01` block says (an Ingress class, a Gateway API parent)."""

    selector: dict[str, Any] | None = None
    http01: dict[str, Any] | None = None
    dns01: dict[str, Any] | None = None


@strict
class ACMEIssuer:
    server: str = Field(min_length=1)
    private_key_secret_ref: SecretKeySelector
    email: str | None = None
    skip_tls_verify: bool = Field(default=False, alias="skipTLSVerify")
    ca_bundle: str | None = None  # base64 PEM: the CAs the ACME server's certificate chains to
    solvers: list[ChallengeSolver] = Field(default_factory=list)
    preferred_chain: str | None = None
    external_account_binding: dict[str, Any] | None = None
    disable_account_key_generation: bool = False
    enable_duration_feature: bool = False
    profile: str | None = None


@strict
class IssuerSpec:
    self_signed: SelfSignedIssuer | None = None
    ca: CAIssuer | None = None
    acme: ACMEIssuer | None = None
    vault: dict[str, Any] | None = None
    venafi: dict[str, Any] | None = None


@lenient
class CertManagerObject:
    api_version: str
    kind: str
    metadata: ObjectMeta


@lenient
class Issuer(CertManagerObject):
    spec: IssuerSpec


@lenient
class ClusterIssuer(CertManagerObject):
    spec: IssuerSpec


@strict
class IssuerRef:
    name: str = Field(min_length=1)
    kind: str = "Issuer"
    group: str = CERT_MANAGER


@strict
class PrivateKeySettings:
    algorithm: str = "RSA"  # cert-manager's default
    size: int | None = None
    encoding: str = "PKCS1"
    rotation_policy: str = "Always"  # cert-manager's default since v1.18


@strict
class CertificateSubject:
    organizations: list[str] = Field(default_factory=list)
    countries: list[str] = Field(default_factory=list)
    organizational_units: list[str] = Field(default_factory=list)
    localities: list[str] = Field(default_factory=list)
    provinces: list[str] = Field(default_factory=list)
    street_addresses: list[str] = Field(default_factory=list)
    postal_codes: list[str] = Field(default_factory=list)
    serial_number: str | None = None


@strict
class SecretTemplate:
    annotations: dict[str, str] = Field(default_factory=dict)
    labels: dict[str, str] = Field(default_factory=dict)


@strict
class CertificateSpec:
    secret_name: str = Field(min_length=1)
    issuer_ref: IssuerRef
    dns_names: list[str] = Field(default_factory=list)
    common_name: str | None = None
    ip_addresses: list[str] = Field(default_factory=list)
    uris: list[str] = Field(default_factory=list)
    email_addresses: list[str] = Field(default_factory=list)
    duration: str | None = None
    renew_before: str | None = None
    renew_before_percentage: int | None = None
    private_key: PrivateKeySettings | None = None
    usages: list[str] = Field(default_factory=list)
    is_ca: bool = Field(default=False, alias="isCA")
    subject: CertificateSubject | None = None
    secret_template: SecretTemplate | None = None
    revision_history_limit: int | None = None
    keystores: dict[str, Any] | None = None
    additional_output_formats: list[dict[str, Any]] = Field(default_factory=list)
    literal_subject: str | None = None
    encode_usages_in_request: bool | None = None
    name_constraints: dict[str, Any] | None = None
    other_names: list[dict[str, Any]] = Field(default_factory=list)


@lenient
class Certificate(CertManagerObject):
    spec: CertificateSpec


@lenient
class ChallengeSpec:
    """What the gateway answers on port 80: `GET /.well-known/acme-challenge/TOKEN` for
    `dnsName` gets `key` (the key authorization)."""

    dns_name: str
    token: str
    key: str
    type: str = "HTTP-01"
    url: str = ""


@lenient
class Challenge(CertManagerObject):
    spec: ChallengeSpec
