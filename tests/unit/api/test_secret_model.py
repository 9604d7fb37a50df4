"""A Secret's key material is a type from admission on: no printable form of the admitted model
or of the stored object shows it, and it cannot be a dictionary key."""

from __future__ import annotations

import base64

import pytest

from bastion.api import core
from bastion.api.admission import admit
from bastion.private import REDACTED, PrivateBytes
from bastion.store import StoredObject
from bastion.store.keys import StoreKey

KEY = b"-----BEGIN PRIVATE KEY-----\nTOPSECRETKEYMATERIAL\n-----END PRIVATE KEY-----\n"


def secret(**extra: object) -> core.Secret:
    model = admit({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
                   "metadata": {"name": "s", "namespace": "istio-system"},
                   "data": {"tls.crt": base64.b64encode(b"cert").decode(),
                            "tls.key": base64.b64encode(KEY).decode()}, **extra}).model
    assert isinstance(model, core.Secret)
    return model


def test_no_printable_form_shows_the_key() -> None:
    model = secret(stringData={"key": KEY.decode()})
    encoded = base64.b64encode(KEY).decode()
    for text in (repr(model), str(model), repr(model.private_key("tls.key")),
                 str(model.private_key("key"))):
        assert "TOPSECRET" not in text and encoded not in text, text
    assert repr(model.private_key("tls.key")) == f"PrivateBytes({REDACTED})"
    stored = StoredObject.of(StoreKey("", "Secret", "istio-system", "s"), 1, {"data": encoded})
    assert encoded not in repr(stored)


def test_key_is_only_reachable_as_private_bytes() -> None:
    model = secret()
    assert "tls.key" not in model.values()
    assert model.values() == {"tls.crt": b"cert"}
    with pytest.raises(KeyError):
        model.value("tls.key")
    key = model.private_key("tls.key")
    assert isinstance(key, PrivateBytes) and key.reveal() == KEY


def test_private_bytes_cannot_key_a_cache() -> None:
    with pytest.raises(TypeError):
        {PrivateBytes(KEY): 1}
