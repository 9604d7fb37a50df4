"""`bastion certs`: the certificates the task makes with openssl, in one command each: a root
CA, an intermediate, server and client certificates, and a CRL. Each writes PEM files
(`PREFIX.crt`, `PREFIX.key`, the key readable by its owner only); with `--secret` it also
stores the Secret a gateway reads, in the task's layouts.

Output names files and summarises certificates; it never prints a key."""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from bastion import pki
from bastion.cli.common import State, fail, namespace_option, pass_state
from bastion.filewrite import write_atomically
from bastion.pem import summarize

F = TypeVar("F", bound=Callable[..., Any])


@click.group()
def certs() -> None:
    """Make CA, server and client certificates and CRLs (ECDSA P-256 unless --rsa)."""


def _key_options(f: F) -> F:
    f = click.option("--days", default=365, show_default=True, help="Validity in days.")(f)
    f = click.option("--rsa", "rsa_bits", type=int, default=None, flag_value=2048,
                     is_flag=False, help="An RSA key (--rsa: 2048 bits; --rsa=4096).")(f)
    return click.option("--out", "prefix", required=True, metavar="PREFIX",
                        help="Write PREFIX.crt and PREFIX.key.")(f)


def _secret_options(f: F) -> F:
    f = click.option("--secret", "secret_name", default=None,
                     help="Also store the Secret NAME (created or replaced).")(f)
    f = click.option("--format", "secret_format", type=click.Choice(["tls", "generic"]),
                     default="tls", show_default=True,
                     help="tls: kubernetes.io/tls with tls.crt and tls.key; generic: "
                          "tls.crt, tls.key and ca.crt (for mutual TLS).")(f)
    return namespace_option(f)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def _window(days: int) -> tuple[dt.datetime, dt.datetime]:
    if days < 1:
        fail("--days must be at least 1")
    start = _now() - dt.timedelta(minutes=5)  # clocks that lag a little still accept it
    return start, start + dt.timedelta(days=days)


def _load_ca(prefix: str) -> tuple[list[x509.Certificate], pki.PrivateKey]:
    """The CA at PREFIX (its chain, the CA first) and its key."""
    try:
        chain = x509.load_pem_x509_certificates(Path(prefix + ".crt").read_bytes())
        key = pki.load_key(Path(prefix + ".key").read_bytes())
    except (OSError, ValueError) as exc:
        fail(f"cannot read the CA {prefix}.crt / {prefix}.key: {exc}")
    return chain, key


def _write(prefix: str, chain: list[x509.Certificate], key: pki.PrivateKey) -> None:
    Path(prefix).parent.mkdir(parents=True, exist_ok=True)
    Path(prefix + ".crt").write_bytes(pki.cert_pem(*chain))
    write_atomically(Path(prefix + ".key"), pki.key_pem(key, "PKCS8").reveal())
    s = summarize(chain[0])
    names = f", DNS {', '.join(s.dns_names)}" if s.dns_names else ""
    click.echo(f"wrote {prefix}.crt and {prefix}.key: {s.subject}, serial {s.serial}{names}, "
               f"valid {s.not_before} to {s.not_after}")


def _key(rsa_bits: int | None) -> pki.PrivateKey:
    return pki.new_key("RSA", rsa_bits) if rsa_bits else pki.new_key("ECDSA")


def _store(state: State, name: str, secret_format: str, chain: list[x509.Certificate],
           key: pki.PrivateKey, ca: list[x509.Certificate]) -> None:
    from bastion.cli.resources import TLS_SECRET_TYPE, create_secret

    data = {"tls.crt": pki.cert_pem(*chain), "tls.key": pki.key_pem(key, "PKCS8").reveal()}
    if secret_format == "generic":
        data["ca.crt"] = pki.cert_pem(*ca)  # the issuing CA verifies clients it issued
    create_secret(state, name, TLS_SECRET_TYPE if secret_format == "tls" else "Opaque", data,
                  create_only=False)


@certs.command("root")
@click.option("--cn", "common_name", default="example.com", show_default=True)
@click.option("--org", "organization", default="example Inc.", show_default=True)
@_key_options
def root(common_name: str, organization: str, prefix: str, rsa_bits: int | None,
         days: int) -> None:
    """A self-signed root CA (the task's `openssl req -x509 ... -keyout example.com.key`)."""
    key = _key(rsa_bits)
    start, end = _window(days)
    request = pki.Request(common_name, organization, not_before=start, not_after=end,
                          is_ca=True, usages=())
    _write(prefix, [pki.sign(request, key.public_key(), None, key)], key)


@certs.command("intermediate")
@click.option("--ca", "ca_prefix", required=True, metavar="PREFIX", help="The issuing CA.")
@click.option("--cn", "common_name", required=True)
@click.option("--org", "organization", default="", help="Organisation (O=).")
@_key_options
def intermediate(ca_prefix: str, common_name: str, organization: str, prefix: str,
                 rsa_bits: int | None, days: int) -> None:
    """An intermediate CA signed by --ca; its file holds it and the chain above it."""
    chain, ca_key = _load_ca(ca_prefix)
    key = _key(rsa_bits)
    start, end = _window(days)
    request = pki.Request(common_name, organization, not_before=start, not_after=end,
                          is_ca=True, usages=(), path_length=0)
    _write(prefix, [pki.sign(request, key.public_key(), (chain[0], ca_key)),
                    *_without_roots(chain)], key)


def _leaf(state: State, ca_prefix: str, common_name: str, organization: str, hosts: list[str],
          usages: tuple[str, ...], prefix: str, rsa_bits: int | None, days: int,
          secret_name: str | None, secret_format: str) -> None:
    chain, ca_key = _load_ca(ca_prefix)
    key = _key(rsa_bits)
    start, end = _window(days)
    dns = tuple(h for h in hosts if not _is_ip(h))
    ips = tuple(h for h in hosts if _is_ip(h))
    request = pki.Request(common_name, organization, dns, ips, start, end,
                          usages=pki.DEFAULT_USAGES + usages)
    leaf = pki.sign(request, key.public_key(), (chain[0], ca_key))
    issued = [leaf, *_without_roots(chain)]
    _write(prefix, issued, key)
    if secret_name:
        _store(state, secret_name, secret_format, issued, key, chain)


def _without_roots(chain: list[x509.Certificate]) -> list[x509.Certificate]:
    """The intermediates of a CA's chain: a root is the client's to hold, not sent."""
    return [c for c in chain if c.issuer != c.subject]


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


@certs.command("server")
@click.option("--ca", "ca_prefix", required=True, metavar="PREFIX", help="The issuing CA.")
@click.option("--host", "hosts", multiple=True, required=True,
              help="A DNS name or IP address (repeatable); the first is the CN.")
@click.option("--org", "organization", default="", help="Organisation (O=).")
@_key_options
@_secret_options
@pass_state
def server(state: State, ca_prefix: str, hosts: tuple[str, ...], organization: str,
           prefix: str, rsa_bits: int | None, days: int, secret_name: str | None,
           secret_format: str) -> None:
    """A server certificate with a SAN for every --host."""
    _leaf(state, ca_prefix, hosts[0], organization, list(hosts), ("server auth",), prefix,
          rsa_bits, days, secret_name, secret_format)


@certs.command("client")
@click.option("--ca", "ca_prefix", required=True, metavar="PREFIX", help="The issuing CA.")
@click.option("--cn", "common_name", required=True)
@click.option("--org", "organization", default="", help="Organisation (O=).")
@_key_options
@_secret_options
@pass_state
def client(state: State, ca_prefix: str, common_name: str, organization: str, prefix: str,
           rsa_bits: int | None, days: int, secret_name: str | None,
           secret_format: str) -> None:
    """A client certificate (for mutual TLS) with the CN given."""
    _leaf(state, ca_prefix, common_name, organization, [], ("client auth",), prefix, rsa_bits,
          days, secret_name, secret_format)


@certs.command("crl")
@click.option("--ca", "ca_prefix", required=True, metavar="PREFIX", help="The issuing CA.")
@click.option("--revoke", "revoked", multiple=True, metavar="CERT",
              help="A certificate file to revoke (repeatable).")
@click.option("--days", default=30, show_default=True, help="Until the next update.")
@click.option("--out", "path", required=True, help="The CRL file (PEM).")
def crl(ca_prefix: str, revoked: tuple[str, ...], days: int, path: str) -> None:
    """A CRL signed by --ca revoking the certificates given."""
    chain, ca_key = _load_ca(ca_prefix)
    serials = []
    for cert_path in revoked:
        try:
            serials.append(x509.load_pem_x509_certificate(Path(cert_path).read_bytes())
                           .serial_number)
        except (OSError, ValueError) as exc:
            fail(f"cannot read {cert_path}: {exc}")
    now = _now()
    revocations = pki.revocation_list((chain[0], ca_key), serials, now,
                                      now + dt.timedelta(days=days))
    Path(path).write_bytes(revocations.public_bytes(Encoding.PEM))
    click.echo(f"wrote {path}: {len(serials)} revoked, next update "
               f"{revocations.next_update_utc:%Y-%m-%dT%H:%M:%SZ}")


def _client_options(f: F) -> F:
    f = click.option("--days", default=365, show_default=True, help="Validity in days.")(f)
    f = click.option("--out", "out_dir", required=True, metavar="DIR",
                     help="Write DIR/tls.crt, DIR/tls.key (mode 0600) and DIR/ca.crt.")(f)
    return click.argument("name")(f)


@certs.command("gateway")
@_client_options
@namespace_option
@pass_state
def gateway(state: State, name: str, out_dir: str, days: int) -> None:
    """A remote gateway's client certificate, issued by the control plane's xDS CA, for
    `bastion gateway --control-plane`. -n names the gateway's namespace (default
    istio-system), the only one whose configuration and credentials it may receive."""
    _client_certificate(state, {"role": "gateway", "name": name,
                                "namespace": state.namespace or "istio-system"},
                        out_dir, days)


@certs.command("admin")
@_client_options
@pass_state
def admin(state: State, name: str, out_dir: str, days: int) -> None:
    """An operator's client certificate for a control plane's remote API (`serve
    --api-address`; `bastion --server HOST:PORT --client-certificate DIR/tls.crt
    --client-key DIR/tls.key --certificate-authority DIR/ca.crt ...`). It can do whatever
    the local socket can: keep it as you would a kubeconfig."""
    _client_certificate(state, {"role": "admin", "name": name}, out_dir, days)


def _client_certificate(state: State, identity: dict[str, str], out_dir: str,
                        days: int) -> None:
    """The key is made here and never sent: the control plane signs a request for it."""
    key = pki.new_key("ECDSA")
    answer = state.call({"op": "issue_certificate", **identity, "days": days,
                         "csr": pki.csr_pem(key, identity["name"]).decode()})
    if not answer.get("ok"):
        fail(answer.get("error", "the control plane refused"))
    directory = Path(out_dir)
    directory.mkdir(parents=True, exist_ok=True)
    chain = x509.load_pem_x509_certificates(answer["certificate"].encode())
    _write(str(directory / "tls"), chain, key)
    (directory / "ca.crt").write_text(answer["ca"])
    click.echo(f"identity {answer['identity']}; wrote {directory / 'ca.crt'}")
