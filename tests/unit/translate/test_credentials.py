from __future__ import annotations

import base64

import pytest

from bastion.api import core
from bastion.api.base import validate
from bastion.translate.istio import credentials
from bastion.translate.istio.credentials import CredentialError, SecretLookup
from tests import certs


def secret(name: str, namespace: str = "istio-system", **values: bytes) -> core.Secret:
    return validate(core.Secret, {
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "data": {k.replace("_", "."): base64.b64encode(v).decode() for k, v in values.items()}})


def lookup(*secrets: core.Secret) -> SecretLookup:
    return SecretLookup({(s.metadata.namespace, s.metadata.name): s for s in secrets},
                        "istio-system")


def test_generic_pair_wins_over_tls_pair() -> None:
    a, b = certs.leaf("a.example.com"), certs.leaf("b.example.com")
    found = credentials.tls_credential(lookup(secret(
        "x", cert=a.cert, key=a.key, tls_crt=b.cert, tls_key=b.key)), "x")
    assert "CN=a.example.com" in found.summary.subject
    assert found.private_key.reveal() == a.key
    assert "PRIVATE" not in repr(found)


def test_ca_precedence() -> None:
    root1 = certs.ca("root1")[0].cert
    root2 = certs.ca("root2")[0].cert
    pair = certs.leaf("a.example.com")
    both = secret("x", cert=pair.cert, key=pair.key, cacert=root1, ca_crt=root2)
    assert credentials.ca_credential(lookup(both), "x").trusted_ca == root1
    separate = secret("x-cacert", cacert=root2)
    found = credentials.ca_credential(lookup(both, separate), "x")
    assert found.trusted_ca == root2 and found.name == "x-cacert"


@pytest.mark.parametrize(("values", "reason"), [
    ({"cert": b"junk", "key": b"junk"}, "certificate is not valid PEM"),
    ({"tls_crt": b"x"}, "needs keys 'tls.crt' and 'tls.key'"),
])
def test_bad_material(values: dict[str, bytes], reason: str) -> None:
    with pytest.raises(CredentialError, match=reason):
        credentials.tls_credential(lookup(secret("x", **values)), "x")


def test_mismatch_and_key_never_in_message() -> None:
    a, b = certs.leaf("a.example.com"), certs.leaf("b.example.com")
    with pytest.raises(CredentialError) as info:
        credentials.tls_credential(lookup(secret("x", cert=a.cert, key=b.key)), "x")
    assert "does not match" in str(info.value)
    assert "PRIVATE KEY" not in str(info.value)


def test_cacert_named_credential_cannot_serve() -> None:
    with pytest.raises(CredentialError, match="can only hold a CA"):
        credentials.tls_credential(lookup(), "x-cacert")


def test_scheme_prefixes() -> None:
    assert credentials.credential_name("kubernetes://a") == "a"
    with pytest.raises(CredentialError, match="not supported"):
        credentials.credential_name("sds://a")


def test_corrupt_private_part_is_caught() -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    pair = certs.leaf("a.example.com")
    key = serialization.load_pem_private_key(pair.key, None)
    numbers = key.private_numbers()
    broken = rsa.RSAPrivateNumbers(
        p=numbers.p, q=numbers.q, d=numbers.d + 2, dmp1=numbers.dmp1 + 2, dmq1=numbers.dmq1,
        iqmp=numbers.iqmp, public_numbers=numbers.public_numbers,
    ).private_key(unsafe_skip_rsa_key_validation=True)
    pem = broken.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                               serialization.NoEncryption())
    with pytest.raises(CredentialError, match="private key is corrupt"):
        credentials.tls_credential(lookup(secret("x", cert=pair.cert, key=pem)), "x")


def test_ecdsa_pair_is_accepted() -> None:
    pair = certs.leaf("ec.example.com", kind="ec")
    found = credentials.tls_credential(lookup(secret("x", cert=pair.cert, key=pair.key)), "x")
    assert "CN=ec.example.com" in found.summary.subject
