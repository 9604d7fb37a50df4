"""`bastion translate` (and `analyze --offline`): the real admission and translation, offline,
on manifests, with no server and no Envoy."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

import click
import yaml

from bastion.cli.common import fail
from bastion.cli.loader import load_manifests
from bastion.errors import InputError

F = TypeVar("F", bound=Callable[..., Any])


def run(files: tuple[str, ...], gateway_namespace: str, labels: tuple[str, ...],
        port_map: tuple[str, ...]) -> tuple[list[str], Any, Any]:
    """(objects refused, the build, its inputs' resources)."""
    from bastion.api.admission import admit_all
    from bastion.build import Inputs, build
    from bastion.cli.serve import _labels, _port_map
    from bastion.translate.istio import Options, Workload

    if not files:
        fail("must specify -f")
    try:
        objects = load_manifests(files)
    except InputError as exc:
        fail(str(exc))
    models, refused = admit_all(objects)
    workload = Workload.of(dict(_labels(labels)) or Workload().label_map, gateway_namespace)
    inputs = Inputs.of(models)
    result = build(None, inputs, 0, [workload], Options(port_map=_port_map(port_map)))
    return refused, result, inputs.resources


def options(f: F) -> F:
    f = click.option("-f", "--filename", "files", multiple=True, help="File, directory or -.")(f)
    f = click.option("--gateway-namespace", default="istio-system", show_default=True)(f)
    f = click.option("--gateway-label", "labels", multiple=True, metavar="KEY=VALUE")(f)
    return click.option("--port-map", multiple=True, metavar="GW=LOCAL")(f)


@click.command()
@options
@click.option("--to", "target", type=click.Choice(["xds", "ir", "all"]), default="xds",
              show_default=True)
@click.option("-o", "--output", "fmt", type=click.Choice(["yaml", "json"]), default="yaml")
def translate(files: tuple[str, ...], gateway_namespace: str, labels: tuple[str, ...],
              port_map: tuple[str, ...], target: str, fmt: str) -> None:
    """Show the Envoy configuration (or IR) manifests translate to. Keys print as [redacted]."""
    from bastion.dataplane.envoy.driver import render_checked
    from bastion.dataplane.envoy.dump import snapshot_to_data
    from bastion.translate.dump import ir_to_data

    refused, result, _ = run(files, gateway_namespace, labels, port_map)
    gateway = next(iter(result.gateways.values()))
    doc: dict[str, Any] = {"refused": refused,
                           "diagnostics": [d.to_dict() for d in gateway.ir.diagnostics]}
    if target in ("ir", "all"):
        doc["ir"] = ir_to_data(gateway.ir.config)
    if target in ("xds", "all"):
        doc["xds"] = snapshot_to_data(render_checked(gateway))
    if fmt == "json":
        click.echo(json.dumps(doc, indent=2, sort_keys=True))
    else:
        click.echo(yaml.safe_dump(doc, sort_keys=True, default_flow_style=False).rstrip())
