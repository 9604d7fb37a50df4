"""apply, create, delete, get: the kubectl verbs."""

from __future__ import annotations

import base64
import sys
from pathlib import Path
from typing import Any

import click

from bastion.cli.common import State, fail, namespace_option, pass_state, warn
from bastion.errors import InputError

TLS_SECRET_TYPE = "kubernetes.io/tls"


def _report(answer: dict[str, Any], verb_outcome: bool = True) -> None:
    failed = False
    for result in answer.get("results", []):
        if result["ok"]:
            for warning in result.get("warnings", []):
                warn(warning)
            click.echo(f"{result['resource']} {result['outcome']}")
        else:
            failed = True
            click.echo(f"error: {result['error']}", err=True)
    if not answer.get("ok") and not answer.get("results"):
        fail(answer.get("error", "request failed"))
    if failed:
        sys.exit(1)


def _manifests(files: tuple[str, ...], recursive: bool) -> list[Any]:
    from bastion.cli.loader import load_manifests

    if not files:
        fail("must specify one of -f and -k")
    try:
        return load_manifests(files, recursive)
    except InputError as exc:
        fail(str(exc))


@click.command()
@click.option("-f", "--filename", "files", multiple=True, help="File, directory or - for stdin.")
@click.option("-R", "--recursive", is_flag=True, help="Walk directories recursively.")
@click.option("--dry-run", type=click.Choice(["none", "client", "server"]), default="none")
@namespace_option
@pass_state
def apply(state: State, files: tuple[str, ...], recursive: bool, dry_run: str) -> None:
    """Create or update objects from manifests."""
    objects = _manifests(files, recursive)
    _report(state.call({"op": "apply", "objects": objects, "namespace": state.ns,
                        "dryRun": dry_run != "none"}))


@click.group(invoke_without_command=True)
@click.option("-f", "--filename", "files", multiple=True)
@namespace_option
@click.pass_context
def create(ctx: click.Context, files: tuple[str, ...]) -> None:
    """Create objects from manifests, or a secret."""
    if ctx.invoked_subcommand is None:
        state = ctx.find_object(State)
        assert state is not None
        objects = _manifests(files, False)
        _report(state.call({"op": "apply", "objects": objects, "namespace": state.ns,
                            "createOnly": True}))


@create.group()
@namespace_option
def secret() -> None:
    """Create a secret (tls or generic)."""


def _read_file(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        fail(f"cannot read {path}: {exc.strerror}")


def create_secret(state: State, name: str, secret_type: str, data: dict[str, bytes],
                  files: tuple[str, str] | None = None, create_only: bool = True) -> None:
    """The control plane admits the Secret, warns about names and keys a gateway never uses,
    and (for `tls`, with `files`) checks that key and certificate belong together, as kubectl
    does before sending: one check, where the checking code is already loaded."""
    body = {
        "apiVersion": "v1", "kind": "Secret", "type": secret_type,
        "metadata": {"name": name, "namespace": state.ns},
        "data": {k: base64.b64encode(v).decode() for k, v in data.items()},
    }
    answer = state.call({"op": "apply", "objects": [body], "namespace": state.ns,
                         "createOnly": create_only, "verifyKeyPairs": files is not None})
    for result in answer.get("results", []):
        if result.get("reason") == "BadKeyPair" and files is not None:
            fail(f"failed to load key pair from {files[0]} and {files[1]}: {result['error']}")
    _report(answer)


@secret.command("tls")
@click.argument("name")
@click.option("--cert", required=True, help="PEM certificate chain file.")
@click.option("--key", required=True, help="PEM private key file.")
@namespace_option
@pass_state
def secret_tls(state: State, name: str, cert: str, key: str) -> None:
    """Create a kubernetes.io/tls secret from a certificate and key."""
    create_secret(state, name, TLS_SECRET_TYPE,
                   {"tls.crt": _read_file(cert), "tls.key": _read_file(key)}, (cert, key))


@secret.command("generic")
@click.argument("name")
@click.option("--from-file", "from_files", multiple=True, help="[key=]path")
@click.option("--from-literal", "literals", multiple=True, help="key=value")
@click.option("--type", "secret_type", default="Opaque")
@namespace_option
@pass_state
def secret_generic(state: State, name: str, from_files: tuple[str, ...],
                   literals: tuple[str, ...], secret_type: str) -> None:
    """Create a secret from files and literal values."""
    data: dict[str, bytes] = {}
    for spec in from_files:
        key, sep, path = spec.partition("=")
        if not sep:
            key, path = Path(spec).name, spec
        if Path(path).is_dir():
            for file in sorted(p for p in Path(path).iterdir() if p.is_file()):
                data[file.name] = file.read_bytes()
            continue
        data[key] = _read_file(path)
    for spec in literals:
        key, sep, value = spec.partition("=")
        if not sep or not key:
            fail(f"invalid literal source {spec!r}, expected key=value")
        data[key] = value.encode()
    create_secret(state, name, secret_type, data)


@click.command()
@click.argument("args", nargs=-1)
@click.option("-f", "--filename", "files", multiple=True)
@click.option("--ignore-not-found", is_flag=True, help="Treat missing objects as deleted.")
@namespace_option
@pass_state
def delete(state: State, args: tuple[str, ...], files: tuple[str, ...],
           ignore_not_found: bool) -> None:
    """Delete objects by kind and names, or those in manifests."""
    targets: list[dict[str, str]] = []
    if files:
        for obj in _manifests(files, False):
            if isinstance(obj, dict) and isinstance(obj.get("metadata"), dict):
                targets.append({"kind": str(obj.get("kind", "")),
                                "name": str(obj["metadata"].get("name", "")),
                                "namespace": obj["metadata"].get("namespace") or state.ns})
    else:
        if not args:
            fail("you must specify the type of resource to delete")
        kinds_and_names = list(args)
        if "/" in kinds_and_names[0]:
            pairs = [a.split("/", 1) for a in kinds_and_names]
        else:
            if len(kinds_and_names) < 2:
                fail(f"resource(s) were provided, but no name was specified for "
                     f"{kinds_and_names[0]}")
            kind_list = kinds_and_names[0].split(",")
            pairs = [[k, n] for k in kind_list for n in kinds_and_names[1:]]
        targets = [{"kind": k, "name": n, "namespace": state.ns} for k, n in pairs]
    answer = state.call({"op": "delete", "targets": targets, "namespace": state.ns})
    failed = False
    for result in answer.get("results", []):
        if result["ok"]:
            kind, _, name = result["resource"].partition("/")
            click.echo(f'{kind} "{name}" deleted')
        elif result.get("reason") == "NotFound" and ignore_not_found and "resource type" not in (
                result["error"]):
            continue
        else:
            failed = True
            click.echo(f"Error from server (NotFound): {result['error']}"
                       if result.get("reason") == "NotFound" else f"error: {result['error']}",
                       err=True)
    if failed:
        sys.exit(1)


OUTPUTS = ("yaml", "json", "name", "wide", "jsonpath=TEMPLATE", "custom-columns=SPEC")


@click.command()
@click.argument("kind")
@click.argument("names", nargs=-1)
@click.option("-o", "--output", "fmt", metavar="|".join(OUTPUTS))
@click.option("-A", "--all-namespaces", is_flag=True)
@click.option("-l", "--selector", "labels", help="Label selector (a=b, a!=b, a in (x,y), a, !a).")
@click.option("--field-selector", "fields", help="Field selector (metadata.name=x, ...).")
@click.option("--show-labels", is_flag=True, help="Add a LABELS column.")
@namespace_option
@pass_state
def get(state: State, kind: str, names: tuple[str, ...], fmt: str | None,
        all_namespaces: bool, labels: str | None, fields: str | None,
        show_labels: bool) -> None:
    """List objects (private keys are always shown as [redacted])."""
    from bastion.cli import output

    fmt_name, _, argument = (fmt or "").partition("=")
    if fmt and fmt_name not in ("yaml", "json", "name", "wide", "jsonpath", "custom-columns"):
        fail(f"unable to match a printer suitable for the output format {fmt!r}, allowed "
             f"formats are: {', '.join(OUTPUTS)}")
    if "/" in kind and not names:
        kind, single = kind.split("/", 1)
        names = (single,)
    items: list[dict[str, Any]] = []
    wanted: tuple[str | None, ...] = names or (None,)
    for name in wanted:
        answer = state.call({"op": "get", "kind": kind, "name": name, "namespace": state.ns,
                             "allNamespaces": all_namespaces, "labelSelector": labels,
                             "fieldSelector": fields})
        if not answer.get("ok"):
            click.echo(f"Error from server (NotFound): {answer.get('error')}", err=True)
            sys.exit(1)
        items.extend(answer["items"])
    if answer.get("warning"):
        warn(answer["warning"])
    one = bool(names) and len(names) == 1
    if fmt_name in ("yaml", "json"):
        click.echo(output.dump(items, fmt_name, single=one))
    elif fmt_name == "jsonpath":
        try:
            click.echo(output.jsonpath(items, argument, one), nl=False)
        except InputError as exc:
            fail(str(exc))
    elif fmt_name == "name":
        if items:
            click.echo(output.names(items))
    elif not items:
        where = "any namespace" if all_namespaces else f"{state.ns} namespace"
        click.echo(f"No resources found in {where}.", err=True)
    elif fmt_name == "custom-columns":
        try:
            click.echo(output.custom_columns(items, argument))
        except InputError as exc:
            fail(str(exc))
    else:
        click.echo(output.table(items, all_namespaces, wide=fmt_name == "wide",
                                show_labels=show_labels))
