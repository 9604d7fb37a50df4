"""kubectl's JSONPath templates, on the examples of kubectl's JSONPath documentation (its input
document and its table of templates and results), and the two the Secure Gateways task uses."""

from __future__ import annotations

import json

import pytest

from bastion.cli.jsonpath import render
from bastion.errors import InputError

DOC = json.loads("""
{
  "kind": "List",
  "items":[
    {
      "kind":"None",
      "metadata":{
        "name":"127.0.0.1",
        "labels":{"kubernetes.io/hostname":"127.0.0.1"}
      },
      "status":{
        "capacity":{"cpu":"4"},
        "addresses":[{"type": "LegacyHostIP", "address":"127.0.0.1"}]
      }
    },
    {
      "kind":"None",
      "metadata":{"name":"127.0.0.2"},
      "status":{
        "capacity":{"cpu":"8"},
        "addresses":[
          {"type": "LegacyHostIP", "address":"127.0.0.2"},
          {"type": "another", "address":"127.0.0.3"}
        ]
      }
    }
  ],
  "users":[
    {"name": "myself", "user": {}},
    {"name": "e2e", "user": {"username": "admin", "password": "secret"}}
  ]
}
""")


@pytest.mark.parametrize(("template", "expected"), [
    ("{.kind}", "List"),
    ("{['kind']}", "List"),
    ("{.items[0].metadata.name}", "127.0.0.1"),
    ("{.items[*].metadata.name}", "127.0.0.1 127.0.0.2"),
    ("{..name}", "127.0.0.1 127.0.0.2 myself e2e"),
    ("{.items[-1:].metadata.name}", "127.0.0.2"),
    ("{.users[?(@.name==\"e2e\")].user.password}", "secret"),
    ("{.items[0].metadata.labels.kubernetes\\.io/hostname}", "127.0.0.1"),
    ("{range .items[*]}[{.metadata.name}, {.status.capacity}] {end}",
     '[127.0.0.1, {"cpu":"4"}] [127.0.0.2, {"cpu":"8"}] '),
    ("{range .items[*]}{.metadata.name}{\"\\t\"}{.status.capacity.cpu}{\"\\n\"}{end}",
     "127.0.0.1\t4\n127.0.0.2\t8\n"),
    ("{.items[0].status.addresses[*].address}", "127.0.0.1"),
    ("name={.items[1].metadata.name}", "name=127.0.0.2"),
    ("{.items[5].metadata.name}", ""),  # a missing key prints nothing, as kubectl's default
])
def test_kubectl_documentation_examples(template: str, expected: str) -> None:
    assert render(template, DOC) == expected


def test_the_tasks_templates() -> None:
    service = {"status": {"loadBalancer": {"ingress": [{"ip": "127.0.0.1"}]}},
               "spec": {"ports": [{"name": "http2", "port": 8080}, {"name": "https", "port": 8443}]}}
    assert render("{.status.loadBalancer.ingress[0].ip}", service) == "127.0.0.1"
    assert render('{.spec.ports[?(@.name=="https")].port}', service) == "8443"
    pods = {"kind": "List", "items": [{"metadata": {"name": "istio-ingressgateway-1a2b"}}]}
    assert render("{.items[0].metadata.name}", pods) == "istio-ingressgateway-1a2b"


@pytest.mark.parametrize("template", ["{.items[", "{range .items[*]}{.x}", "{end}"])
def test_bad_templates_are_one_line_errors(template: str) -> None:
    with pytest.raises(InputError) as error:
        render(template, DOC)
    assert "\n" not in str(error.value) and "jsonpath" in str(error.value)
