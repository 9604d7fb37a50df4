"""What runs a container on this machine: the built-in sample for the images of Istio's samples,
or the executable its `command` names."""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass
from typing import Any

HTTPBIN_IMAGES = ("docker.io/mccutchen/go-httpbin", "mccutchen/go-httpbin",
                  "docker.io/kennethreitz/httpbin", "kennethreitz/httpbin",
                  "docker.io/kong/httpbin", "kong/httpbin")
HELLOWORLD_IMAGES = {
    f"{registry}examples-helloworld-{version}": version
    for registry in ("istio/", "docker.io/istio/", "registry.istio.io/release/")
    for version in ("v1", "v2")
}


@dataclass(frozen=True)
class Launch:
    """How to start a container: argv and extra environment, or why it cannot be."""

    argv: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    problem: str = ""


def _repository(image: str) -> str:
    """`docker.io/mccutchen/go-httpbin:v2.15.0` -> `docker.io/mccutchen/go-httpbin`."""
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)
    if ":" in last[-1]:
        name = name[: name.rfind(":")]
    return name


def launch(container: dict[str, Any], pod_name: str, address: str) -> Launch:
    """The container's own command if it names an executable here; else the sample its image
    is; else the reason it cannot run."""
    image = str(container.get("image") or "")
    ports = [p.get("containerPort") for p in container.get("ports") or []
             if isinstance(p.get("containerPort"), int)]
    env = tuple((str(e["name"]), str(e.get("value", ""))) for e in container.get("env") or []
                if isinstance(e, dict) and "name" in e)
    command = [str(c) for c in container.get("command") or []]
    if command:
        executable = shutil.which(command[0])
        if executable is None:
            return Launch(problem=f"no executable {command[0]!r} on this machine for image "
                                  f"{image}")
        args = [str(a) for a in container.get("args") or []]
        return Launch((executable, *command[1:], *args), env)
    repository = _repository(image)
    sample = [sys.executable, "-m", "bastion", "samples", "serve"]
    if repository in HTTPBIN_IMAGES:
        port = ports[0] if ports else 8080
        return Launch((*sample, "httpbin", "--host", address, "--port", str(port)), env)
    if repository in HELLOWORLD_IMAGES:
        port = ports[0] if ports else 5000
        return Launch((*sample, "helloworld", "--host", address, "--port", str(port),
                       "--version", HELLOWORLD_IMAGES[repository], "--instance", pod_name), env)
    return Launch(problem=f"no local runtime for image {image}; give the container a command")
