"""`bastion analyze`: as `istioctl analyze` analyses a cluster, the live store by default;
with `-f`, files laid over the live store; with `--offline`, the files alone."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from typing import Any

import click
import yaml

from bastion.cli.common import State, fail, pass_state
from bastion.cli.loader import load_manifests
from bastion.cli.offline import options, run
from bastion.errors import InputError

LEVELS = {"error": "Error", "warning": "Warning", "info": "Info"}


@click.command()
@options
@click.option("--offline", is_flag=True,
              help="Analyse the files alone, without a running gateway.")
@click.option("-o", "--output", "fmt", type=click.Choice(["log", "json", "yaml"]),
              default="log", show_default=True)
@pass_state
def analyze(state: State, files: tuple[str, ...], gateway_namespace: str,
            labels: tuple[str, ...], port_map: tuple[str, ...], offline: bool,
            fmt: str) -> None:
    """Report every problem in the configuration; exit 1 on any error. The gateway options
    apply to --offline (a live gateway has its own)."""
    from bastion.analysis import analyze as run_analysis

    if offline:
        if not files:
            fail("--offline needs -f")
        refused, result, resources = run(files, gateway_namespace, labels, port_map)
        found = [d.to_dict() for d in run_analysis(resources, result, datetime.now(UTC))]
        what = "the files"
    else:
        try:
            objects = load_manifests(files) if files else []
        except InputError as exc:
            fail(str(exc))
        answer = state.call({"op": "analyze", "objects": objects})
        refused, found = answer["refused"], answer["diagnostics"]
        what = "the live configuration" + (" with the files" if files else "")
    messages = report(refused, found)
    if fmt == "json":
        click.echo(json.dumps(messages, indent=2))
    elif fmt == "yaml":
        click.echo(yaml.safe_dump(messages, sort_keys=False).rstrip())
    else:
        click.echo("\n".join(log_lines(messages, what)))
    sys.exit(1 if any(m["level"] == "Error" for m in messages) else 0)


def report(refused: list[str], found: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The messages, as `-o json` prints them: refusals first, then findings by object."""
    return [_refused(line) for line in refused] + [_message(d) for d in found]


def log_lines(messages: list[dict[str, Any]], what: str) -> list[str]:
    """istioctl's log format: `Level [CODE] (Kind ns/name) field: message`."""
    if not messages:
        return [f"\u2714 No validation issues found when analyzing {what}."]
    out = []
    for m in messages:
        where = f"{m['field']}: " if m["field"] else ""
        origin = f"({m['origin']}) " if m["origin"] else ""
        out.append(f"{m['level']} [{m['code']}] {origin}{where}{m['message']}")
    return out


def _message(diag: dict[str, Any]) -> dict[str, Any]:
    from bastion.analysis import code_of

    return {"code": code_of(diag["code"]), "finding": diag["code"],
            "level": LEVELS.get(diag["severity"], diag["severity"]), "origin": diag["object"],
            "field": diag["field"], "message": diag["message"]}


def _refused(line: str) -> dict[str, Any]:
    """A validation refusal: `Kind ns/name: field: reason` as validation words it."""
    origin, _, rest = line.partition(": ")
    return {"code": "BST0001", "finding": "Invalid", "level": "Error", "origin": origin,
            "field": "", "message": rest or line}
