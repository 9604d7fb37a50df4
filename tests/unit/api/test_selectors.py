"""Label and field selectors as kubectl takes them."""

from __future__ import annotations

import pytest

from bastion.api.selectors import field_selector, label_selector
from bastion.errors import InputError

GATEWAY = {"istio": "ingressgateway", "app": "istio-ingressgateway"}
WEB = {"app": "helloworld", "version": "v1"}


@pytest.mark.parametrize(("selector", "gateway", "web"), [
    ("istio=ingressgateway", True, False),
    ("istio==ingressgateway", True, False),
    ("app!=helloworld", True, False),
    ("app in (helloworld, httpbin)", False, True),
    ("app notin (helloworld)", True, False),
    ("version", False, True),
    ("!version", True, False),
    ("app=helloworld,version in (v1,v2)", False, True),
    ("app=helloworld,version=v2", False, False),
    ("", True, True),
])
def test_label_selector(selector: str, gateway: bool, web: bool) -> None:
    matches = label_selector(selector)
    assert (matches(GATEWAY), matches(WEB)) == (gateway, web)


def test_field_selector() -> None:
    pod = {"metadata": {"name": "p", "namespace": "istio-system"},
           "status": {"phase": "Running"}}
    assert field_selector("metadata.name=p,metadata.namespace=istio-system")(pod)
    assert not field_selector("status.phase!=Running")(pod)
    assert field_selector("spec.nodeName=")(pod)  # an absent field is empty


@pytest.mark.parametrize("bad", ["app in helloworld", "a=b=c", "=x"])
def test_bad_label_selector(bad: str) -> None:
    with pytest.raises(InputError):
        label_selector(bad)


def test_bad_field_selector() -> None:
    with pytest.raises(InputError):
        field_selector("metadata.name")
