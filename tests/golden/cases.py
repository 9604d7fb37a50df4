"""The golden cases' inputs: the objects of a case, with certificates made at test time (a
Secret value `@cert:NAME`, `@key:NAME`, `@chain:NAME` or `@ca:ROOT` is replaced by fresh PEM
for the leaf or root named in the case's `certificates:` section: `cn`, `serial`, `root`,
`kind`, `sans`, and `validFrom`/`validTo` for a window other than ten years from 2026), and the
build of a case with its options."""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any

from bastion.api.admission import admit_all
from bastion.build import GatewayBuild, Inputs, build
from bastion.translate.istio import Options, Workload
from tests import certs
from tests.golden.render import PLACEHOLDER


def materialise(value: str, specs: dict[str, dict[str, Any]]) -> bytes:
    match = PLACEHOLDER.match(value)
    if not match:
        return value.encode()
    what, name = match.groups()
    if what == "ca":
        return certs.ca(name, specs.get(name, {}).get("kind", "rsa"))[0].cert
    spec = specs[name]
    window = None
    if "validFrom" in spec:
        window = (dt.datetime.fromisoformat(spec["validFrom"]),
                  dt.datetime.fromisoformat(spec["validTo"]))
    pair = certs.leaf(spec["cn"], spec.get("serial", 1), spec.get("root", "root1"),
                      spec.get("kind", "rsa"), sans=tuple(spec.get("sans", ())), window=window)
    if what == "key":
        return pair.key
    if what == "chain":
        return pair.cert + certs.ca(spec.get("root", "root1"))[0].cert
    return pair.cert


def objects(case: dict[str, Any]) -> list[Any]:
    specs = case.get("certificates", {})
    out = []
    for obj in case["resources"]:
        if obj.get("kind") == "Secret" and "stringData" in obj:
            data = {k: base64.b64encode(materialise(v, specs)).decode()
                    for k, v in obj.pop("stringData").items()}
            obj = {**obj, "data": {**obj.get("data", {}), **data}}
        out.append(obj)
    return out


def case_build(case: dict[str, Any], bind_address: str | None = None
               ) -> tuple[GatewayBuild, list[str]]:
    """The build of a case with its options (`gatewayNamespace`, `bindAddress`, `portMap`,
    `http3`), and the objects admission refused."""
    options = case.get("options", {})
    models, refused = admit_all(objects(case))
    workload = Workload(namespace=options.get("gatewayNamespace", "istio-system"))
    port_map = tuple(sorted((int(k), int(v)) for k, v in options.get("portMap", {}).items()))
    gateway = build(None, Inputs.of(models), 0, [workload], Options(
        bind_address=bind_address or options.get("bindAddress", "0.0.0.0"), port_map=port_map,
        http3=bool(options.get("http3")))).gateways[workload]
    return gateway, refused
