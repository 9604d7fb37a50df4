"""`bastion samples`: run the task's sample backends locally and print their manifests."""

from __future__ import annotations

from importlib import resources

import click

SAMPLES = ("httpbin", "helloworld")


@click.group()
def samples() -> None:
    """The task's sample backends (httpbin, helloworld)."""


@samples.command("serve")
@click.argument("name", type=click.Choice(SAMPLES))
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=None, help="Default: 8080 httpbin, 5000 helloworld.")
@click.option("--version", "version", default="v1", show_default=True,
              help="helloworld version to report.")
@click.option("--instance", default=None, help="helloworld instance to report (default: the "
                                               "host name; a pod's name when run as a pod).")
def serve_sample(name: str, host: str, port: int | None, version: str,
                 instance: str | None) -> None:
    """Run a sample backend in the foreground."""
    if name == "httpbin":
        from bastion.samples.httpbin import serve

        serve(host, port or 8080)
    else:
        from bastion.samples.helloworld import serve as serve_hello

        serve_hello(host, port or 5000, version, instance)


@samples.command("manifest")
@click.argument("name", type=click.Choice(SAMPLES))
def manifest(name: str) -> None:
    """Print the Service and Endpoints of a sample, for `bastion apply -f -`."""
    click.echo(resources.files("bastion.samples").joinpath(f"{name}.yaml").read_text(), nl=False)
