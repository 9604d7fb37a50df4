"""An ACME order, HTTP-01 only, through the `acme` library (certbot's): the account (its key
kept by the caller, in the Issuer's `privateKeySecretRef` Secret), the order, the challenges
published for the gateway to answer, and the certificate. Blocking: the controller runs it on
a worker thread."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import josepy as jose
from acme import challenges, client, errors, messages
from cryptography.hazmat.primitives.asymmetric import rsa

from bastion import pki
from bastion.private import PrivateBytes
from bastion.services.certificates.signing import IssuanceError

USER_AGENT = "bastion"
ORDER_TIMEOUT = dt.timedelta(seconds=90)


@dataclass(frozen=True)
class Answer:
    """What the gateway must answer for one name: GET /.well-known/acme-challenge/TOKEN."""

    dns_name: str
    token: str
    key: str  # the key authorization
    url: str  # the challenge's URL at the ACME server


@dataclass(frozen=True)
class Account:
    server: str
    key: PrivateBytes  # PEM
    email: str | None
    verify: bool | str  # False (skipTLSVerify), True (system CAs), or a CA bundle file


def new_account_key() -> PrivateBytes:
    """RSA 2048, as cert-manager makes ACME account keys."""
    return pki.key_pem(pki.new_key("RSA", 2048))


def order(account: Account, csr_pem: bytes, publish: Callable[[str, list[Answer]], None],
          withdraw: Callable[[], None], resume: str | None = None) -> bytes:
    """The certificate chain (PEM) for the names of `csr_pem`. `publish(order_url, answers)`
    returns once the gateway answers them; `withdraw` is called at the end, whatever it was.
    With `resume`, the order of that URL (made for `csr_pem`) is carried on, if it still can
    be, instead of a new one."""
    acme_client = _client(account)
    try:
        orderr = (_existing(acme_client, resume, csr_pem) if resume else None) or \
            acme_client.new_order(csr_pem)
        answers, responses = [], []
        for authzr in orderr.authorizations:
            if authzr.body.status == messages.STATUS_VALID:
                continue  # authorized already (a recent order for the name)
            challb = next((c for c in authzr.body.challenges
                           if isinstance(c.chall, challenges.HTTP01)), None)
            if challb is None:
                raise IssuanceError(f"the ACME server offers no HTTP-01 challenge for "
                                    f"{authzr.body.identifier.value}")
            response, validation = challb.response_and_validation(acme_client.net.key)
            answers.append(Answer(authzr.body.identifier.value, challb.chall.encode("token"),
                                  validation, challb.uri))
            if challb.status == messages.STATUS_PENDING:  # not answered yet
                responses.append((challb, response))
        publish(orderr.uri or "", answers)
        for challb, response in responses:
            acme_client.answer_challenge(challb, response)
        deadline = dt.datetime.now() + ORDER_TIMEOUT
        done = acme_client.poll_and_finalize(orderr, deadline)
        return done.fullchain_pem.encode()
    except errors.ValidationError as exc:
        raise IssuanceError("; ".join(_failures(exc))) from None
    except errors.TimeoutError:
        raise IssuanceError("the ACME order did not complete in "
                            f"{ORDER_TIMEOUT.seconds} s") from None
    except messages.Error as exc:
        raise IssuanceError(f"the ACME server refused: {exc.detail or exc.typ}") from None
    except (errors.Error, OSError) as exc:
        raise IssuanceError(f"talking to the ACME server failed: {exc}") from None
    finally:
        withdraw()


def _existing(acme_client: client.ClientV2, url: str, csr_pem: bytes
              ) -> messages.OrderResource | None:
    """The order at `url`, while it can still be completed (pending or ready)."""
    try:
        # POST-as-GET: the acme library has no call of its own to read an order.
        response = acme_client.net.post(url, None,
                                        new_nonce_url=acme_client.directory["newNonce"])
        body = messages.Order.from_json(response.json())
        if body.status not in (messages.STATUS_PENDING, messages.STATUS_READY):
            return None
        authorizations = [acme_client.poll(messages.AuthorizationResource(
            uri=u, body=messages.Authorization()))[0] for u in body.authorizations]
    except (errors.Error, messages.Error, OSError, ValueError, jose.DeserializationError):
        return None
    return messages.OrderResource(body=body, uri=url, authorizations=authorizations,
                                  csr_pem=csr_pem)


def _client(account: Account) -> client.ClientV2:
    try:
        key = pki.load_key(account.key.reveal())
        if not isinstance(key, rsa.RSAPrivateKey):
            raise IssuanceError("the ACME account key must be an RSA key")
        net = client.ClientNetwork(jose.JWKRSA(key=key), user_agent=USER_AGENT,
                                   verify_ssl=account.verify)  # type: ignore[arg-type]
        directory = client.ClientV2.get_directory(account.server, net)
        acme_client = client.ClientV2(directory, net)
        registration = messages.NewRegistration.from_data(
            email=account.email, terms_of_service_agreed=True)
        try:
            acme_client.new_account(registration)
        except errors.ConflictError as exc:  # the key's account exists: use it
            net.account = messages.RegistrationResource(uri=exc.location,
                                                        body=messages.Registration())
        return acme_client
    except messages.Error as exc:
        raise IssuanceError(f"the ACME server refused the account: {exc.detail or exc.typ}"
                            ) from None
    except (errors.Error, OSError, ValueError) as exc:
        raise IssuanceError(f"the ACME server at {account.server} cannot be used: {exc}"
                            ) from None


def _failures(exc: errors.ValidationError) -> list[str]:
    out = []
    for authzr in exc.failed_authzrs:
        for challb in authzr.body.challenges:
            if challb.error is not None:
                out.append(f"{authzr.body.identifier.value}: {challb.error.detail or challb.error.typ}")
    return out or ["the ACME server refused the authorization"]
