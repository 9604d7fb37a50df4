"""The certificate controller: every Certificate compared with its Secret whenever either (or
its Issuer) changes and at its renewal time; issued when the Secret is missing, holds another
certificate, or is due; failures retried with exponential back-off while the old certificate
keeps serving. Status (cert-manager's conditions and times) is worked out here and shown by
`get`, `describe` and `wait`; Events record each issuance and failure."""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import datetime as dt
import hashlib
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from acme import crypto_util

from bastion import metrics, pki
from bastion.api import certmanager
from bastion.api.admission import Admitted, admit
from bastion.api.kinds import ACME, CERT_MANAGER
from bastion.clock import iso, utc_now
from bastion.private import PrivateBytes
from bastion.services.certificates import acme as acme_flow
from bastion.services.certificates import material, signing
from bastion.services.certificates.signing import IssuanceError
from bastion.services.events import NORMAL, WARNING, Events
from bastion.store import ObjectStore
from bastion.store.keys import StoreKey
from bastion.store.objects import Change
from bastion.translate.istio.challenges import PATH_PREFIX

log = logging.getLogger("bastion")

# Where a ClusterIssuer's Secrets (its CA, its ACME account key) are: cert-manager's default
# "cluster resource namespace".
CLUSTER_RESOURCE_NAMESPACE = "cert-manager"
COMPONENT = "bastion-certificates"
WATCHED = {(CERT_MANAGER, "Certificate"), (CERT_MANAGER, "Issuer"),
           (CERT_MANAGER, "ClusterIssuer")}
SELF_CHECK_S = 15.0
CERTIFICATE_LABEL = "acme.cert-manager.io/certificate"
IssuerId = tuple[str, str, str]  # name, kind, group


@dataclass
class Attempts:
    """What the controller remembers of one Certificate between issuances."""

    failures: int = 0
    last_failure: str = ""
    last_failure_time: str = ""
    retry_at: float = 0.0  # time.time()
    running: bool = False
    reason: str = ""
    message: str = ""
    transitions: dict[str, tuple[str, str]] = field(default_factory=dict)  # type -> (status, at)


@dataclass
class ControllerConfig:
    state_dir: Path
    self_check: tuple[str, int]  # where the gateway's port 80 is reached from here
    backoff_s: float = 300.0  # the first retry after a failure; doubled each time
    max_backoff_s: float = 32 * 3600.0  # cert-manager's longest


class CertificateController:
    def __init__(self, store: ObjectStore, config: ControllerConfig,
                 distributed: Callable[[int, float], Awaitable[bool]]) -> None:
        self.store, self.config, self.distributed = store, config, distributed
        self.events = Events(store, COMPONENT)
        self._attempts: dict[StoreKey, Attempts] = {}
        self._wake = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._timer: asyncio.TimerHandle | None = None
        # The Secrets Certificates are issued into or signed with: a change to another Secret
        # (a rotation at 10,000 hosts) is none of this controller's business.
        self._secrets: set[StoreKey] = set()

    # -- the loop -------------------------------------------------------------------------

    async def run(self) -> None:
        self.store.subscribe(self._on_changes)
        try:
            while True:
                self._wake.clear()
                self._reconcile()
                await self._wake.wait()
        finally:
            for task in list(self._tasks):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    def _on_changes(self, changes: list[Change]) -> None:
        if any((c.key.group, c.key.kind) in WATCHED or c.key in self._secrets
               for c in changes):
            self._wake.set()

    def _reconcile(self) -> None:
        now = time.time()
        wake_at: float | None = None
        keys, secrets = set(), set()
        for obj in self.store.select(CERT_MANAGER, "Certificate"):
            keys.add(obj.key)
            cert = _model(obj.body, certmanager.Certificate)
            if cert is None:
                continue
            secrets.add(StoreKey("", "Secret", cert.metadata.namespace or "default",
                                 cert.spec.secret_name))
            secrets |= self._issuer_secrets(cert)
            attempts = self._attempts.setdefault(obj.key, Attempts())
            due, renew_at = self._due(cert, now)
            if due is not None and not attempts.running:
                if now >= attempts.retry_at:
                    self._start(obj.key, obj.body, cert, *due)
                else:
                    wake_at = min(wake_at or attempts.retry_at, attempts.retry_at)
            if renew_at is not None:
                wake_at = min(wake_at or renew_at, renew_at)
        for gone in set(self._attempts) - keys:
            del self._attempts[gone]
        self._secrets = secrets
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if wake_at is not None:
            delay = max(0.0, wake_at - time.time()) + 0.01
            self._timer = asyncio.get_running_loop().call_later(delay, self._wake.set)

    def _due(self, cert: certmanager.Certificate, now: float
             ) -> tuple[tuple[str, str] | None, float | None]:
        """(why it must be issued now, or None; when it will be due, if known)."""
        held = material.read(self._secret(cert))
        if held is None:
            return ("DoesNotExist", "Issuing certificate as Secret does not exist"), None
        issuer = _issuer_id(cert)
        wrong = material.mismatch(cert, held, issuer)
        if wrong is not None:
            return ("IncorrectCertificate", f"Issuing certificate as Secret was previously "
                    f"issued by a different configuration: {wrong}"), None
        if held.leaf.not_valid_after_utc.timestamp() <= now:
            return ("Expired", "Issuing certificate as Secret contains an expired "
                    "certificate"), None
        renew_at = material.renewal_time(cert, held.leaf)
        if renew_at.timestamp() <= now:
            return ("Renewing", f"Renewing certificate as renewal was scheduled at "
                    f"{iso(renew_at)}"), None
        return None, renew_at.timestamp()

    # -- issuing ----------------------------------------------------------------------------

    def _start(self, key: StoreKey, body: dict[str, Any], cert: certmanager.Certificate,
               reason: str, message: str) -> None:
        attempts = self._attempts[key]
        attempts.running, attempts.reason, attempts.message = True, reason, message
        task = asyncio.get_running_loop().create_task(self._issue(key, body, cert, reason,
                                                                  message))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _issue(self, key: StoreKey, body: dict[str, Any], cert: certmanager.Certificate,
                     reason: str, message: str) -> None:
        attempts = self._attempts.setdefault(key, Attempts())
        self.events.record(body, NORMAL, "Issuing", message)
        namespace = cert.metadata.namespace or "default"
        try:
            issuer, issuer_namespace = self._issuer(cert)
            held = material.read(self._secret(cert))
            private = material.private_key(cert, held)
            key_pem = pki.key_pem(private)
            now = dt.datetime.now(dt.UTC).replace(microsecond=0)
            spec = issuer.spec
            if spec.self_signed is not None:
                chain, ca = signing.self_signed(cert, private, now)
            elif spec.ca is not None:
                ca_key = StoreKey("", "Secret", issuer_namespace, spec.ca.secret_name)
                ca_secret = self.store.get(ca_key)
                chain, ca = signing.from_ca(cert, private, ca_secret.body if ca_secret else None,
                                            f"{issuer_namespace}/{spec.ca.secret_name}", now)
            elif spec.acme is not None:
                chain, key_pem = await self._acme(cert, spec.acme, issuer_namespace, key_pem)
                ca = b""
            else:
                raise IssuanceError("bastion implements the selfSigned, ca and acme issuers "
                                    "only")
            secret = material.secret_body(cert, _issuer_id(cert), chain, key_pem, ca or None)
            self.store.apply([(StoreKey("", "Secret", namespace, cert.spec.secret_name),
                               secret)])
        except Exception as exc:  # any failure is retried with back-off
            if not isinstance(exc, IssuanceError):  # a bug in bastion, not the user's doing
                log.exception("Certificate %s/%s: internal error while issuing", namespace,
                              cert.metadata.name)
                exc = IssuanceError(f"internal error: {type(exc).__name__}")
            attempts.failures += 1
            delay = min(self.config.backoff_s * 2 ** (attempts.failures - 1),
                        self.config.max_backoff_s)
            attempts.retry_at = time.time() + delay
            attempts.last_failure, attempts.last_failure_time = str(exc), utc_now()
            metrics.CERTIFICATE_FAILURES.labels(namespace, cert.metadata.name).inc()
            log.warning("Certificate %s/%s: issuance failed (retrying in %.0f s): %s",
                        namespace, cert.metadata.name, delay, exc)
            self.events.record(body, WARNING, "Failed", "The certificate request has failed "
                               f"to complete and will be retried: {exc}")
        else:
            renewed = held is not None
            if renewed:
                metrics.CERTIFICATE_RENEWALS.labels(namespace, cert.metadata.name).inc()
            log.info("Certificate %s/%s: %s into Secret %s", namespace, cert.metadata.name,
                     "renewed" if renewed else "issued", cert.spec.secret_name)
            attempts.failures, attempts.retry_at, attempts.last_failure = 0, 0.0, ""
            self.events.record(body, NORMAL, "Issuing",
                               "The certificate has been successfully issued")
        finally:
            attempts.running = False
            self._wake.set()

    def _issuer(self, cert: certmanager.Certificate
                ) -> tuple[certmanager.Issuer | certmanager.ClusterIssuer, str]:
        """The Issuer the Certificate names, and the namespace its Secrets are in."""
        ref = cert.spec.issuer_ref
        if ref.group != CERT_MANAGER:
            raise IssuanceError(f"issuer group {ref.group!r} is not served by bastion")
        if ref.kind == "ClusterIssuer":
            obj = self.store.get(StoreKey(CERT_MANAGER, "ClusterIssuer", "", ref.name))
            namespace = CLUSTER_RESOURCE_NAMESPACE
        else:
            namespace = cert.metadata.namespace or "default"
            obj = self.store.get(StoreKey(CERT_MANAGER, "Issuer", namespace, ref.name))
        model_type = (certmanager.ClusterIssuer if ref.kind == "ClusterIssuer"
                      else certmanager.Issuer)
        issuer = _model(obj.body, model_type) if obj is not None else None
        if issuer is None:
            raise IssuanceError(f"Referenced {ref.kind} {ref.name!r} does not exist")
        return issuer, namespace

    def _issuer_secrets(self, cert: certmanager.Certificate) -> set[StoreKey]:
        """The Secrets the Certificate's issuer signs with (a CA's): their change may make
        an issuance that failed possible."""
        try:
            issuer, namespace = self._issuer(cert)
        except IssuanceError:
            return set()
        ca = issuer.spec.ca
        return {StoreKey("", "Secret", namespace, ca.secret_name)} if ca is not None else set()

    def _secret(self, cert: certmanager.Certificate) -> dict[str, Any] | None:
        obj = self.store.get(StoreKey("", "Secret", cert.metadata.namespace or "default",
                                      cert.spec.secret_name))
        return obj.body if obj is not None else None

    # -- ACME -------------------------------------------------------------------------------

    async def _acme(self, cert: certmanager.Certificate, spec: certmanager.ACMEIssuer,
                    issuer_namespace: str, key_pem: PrivateBytes) -> tuple[bytes, PrivateBytes]:
        """(the chain, the key it certifies): an order left pending by a control plane that
        stopped is carried on, with the key and request it was made with."""
        account = acme_flow.Account(spec.server, self._account_key(spec, issuer_namespace),
                                    spec.email, self._verify(spec))
        dns, ips = material.names(cert)
        if ips:
            raise IssuanceError("bastion's ACME issuer validates DNS names only (HTTP-01)")
        next_key = StoreKey("", "Secret", cert.metadata.namespace or "default",
                            f"{cert.metadata.name}-next-key")
        pending = self._pending_order(cert, dns, next_key)
        if pending is not None:
            order, csr, key_pem, url = pending
            log.info("Certificate %s/%s: carrying on order %s", next_key.namespace,
                     cert.metadata.name, url)
        else:
            url = None
            csr = crypto_util.make_csr(pki.key_pem(pki.load_key(key_pem.reveal()),
                                                   "PKCS8").reveal(), dns)
            order = self._order_key(cert, csr)
            self.store.apply([(next_key, {
                "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                "metadata": {"name": next_key.name, "namespace": next_key.namespace},
                "data": {"tls.key": base64.b64encode(key_pem.reveal()).decode()}})])
            self._order_state(order, "pending", "", names=sorted(dns), request=csr,
                              certificate=cert.metadata.name)
        loop = asyncio.get_running_loop()

        def publish(url: str, answers: list[acme_flow.Answer]) -> None:
            asyncio.run_coroutine_threadsafe(self._publish(cert, order, url, answers),
                                             loop).result(SELF_CHECK_S + 30)

        def withdraw() -> None:
            asyncio.run_coroutine_threadsafe(self._withdraw(cert), loop).result(30)

        try:
            chain = await asyncio.to_thread(acme_flow.order, account, csr, publish, withdraw,
                                            url)
        except IssuanceError as exc:
            self._order_state(order, "invalid", str(exc))
            raise
        finally:
            self.store.delete([next_key])
        self._order_state(order, "valid", "")
        return chain, key_pem

    def _pending_order(self, cert: certmanager.Certificate, dns: list[str], next_key: StoreKey
                       ) -> tuple[StoreKey, bytes, PrivateBytes, str] | None:
        """(the Order, its request, its key, its URL) of an order for these names that was
        pending when the control plane stopped, if its key is still stored."""
        secret = self.store.get(next_key)
        if secret is None:
            return None
        for obj in self.store.select(ACME, "Order", next_key.namespace):
            labels = obj.body.get("metadata", {}).get("labels") or {}
            status, spec = obj.body.get("status") or {}, obj.body.get("spec") or {}
            if (labels.get(CERTIFICATE_LABEL) != cert.metadata.name
                    or status.get("state") != "pending" or not status.get("url")
                    or spec.get("dnsNames") != sorted(dns)):
                continue
            try:
                request = base64.b64decode(spec["request"])
                key = PrivateBytes(base64.b64decode(secret.body["data"]["tls.key"]))
            except (KeyError, binascii.Error, TypeError):
                return None
            return obj.key, request, key, status["url"]
        return None

    def _account_key(self, spec: certmanager.ACMEIssuer, namespace: str) -> PrivateBytes:
        """The account key from the Issuer's `privateKeySecretRef` Secret; made and stored
        there first when there is none, so that a restart keeps the account."""
        ref = spec.private_key_secret_ref
        key = StoreKey("", "Secret", namespace, ref.name)
        obj = self.store.get(key)
        entry = ref.key or "tls.key"
        if obj is not None:
            try:
                return PrivateBytes(base64.b64decode((obj.body.get("data") or {})[entry]))
            except (KeyError, binascii.Error):
                raise IssuanceError(f"the ACME account Secret {namespace}/{ref.name} has no "
                                    f"key {entry!r}") from None
        if spec.disable_account_key_generation:
            raise IssuanceError(f"the ACME account Secret {namespace}/{ref.name} does not "
                                "exist (disableAccountKeyGeneration is set)")
        made = acme_flow.new_account_key()
        self.store.apply([(key, {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                                 "metadata": {"name": ref.name, "namespace": namespace},
                                 "data": {entry: base64.b64encode(made.reveal()).decode()}})])
        return made

    def _verify(self, spec: certmanager.ACMEIssuer) -> bool | str:
        if spec.skip_tls_verify:
            return False
        if not spec.ca_bundle:
            return True
        try:
            bundle = base64.b64decode(spec.ca_bundle)
        except binascii.Error:
            raise IssuanceError("spec.acme.caBundle is not base64") from None
        path = self.config.state_dir / f"acme-ca-{hashlib.sha256(bundle).hexdigest()[:16]}.pem"
        if not path.exists():
            path.write_bytes(bundle)
        return str(path)

    def _order_key(self, cert: certmanager.Certificate, csr: bytes) -> StoreKey:
        digest = hashlib.sha256(csr).hexdigest()[:10]
        return StoreKey(ACME, "Order", cert.metadata.namespace or "default",
                        f"{cert.metadata.name}-{digest}")

    def _order_state(self, key: StoreKey, state: str, reason: str, url: str | None = None,
                     names: list[str] | None = None, request: bytes | None = None,
                     certificate: str | None = None) -> None:
        """The Order, kept as cert-manager keeps it: its request, URL, names and state."""
        old = self.store.get(key)
        body: dict[str, Any] = dict(old.body) if old is not None else {
            "apiVersion": f"{ACME}/v1", "kind": "Order",
            "metadata": {"name": key.name, "namespace": key.namespace,
                         "labels": {CERTIFICATE_LABEL: certificate or ""}}, "spec": {}}
        if names is not None:
            body["spec"] = {**body.get("spec", {}), "dnsNames": names}
        if request is not None:
            body["spec"] = {**body.get("spec", {}),
                            "request": base64.b64encode(request).decode()}
        status = {**body.get("status", {}), "state": state, "reason": reason}
        if url is not None:
            status["url"] = url
        body["status"] = status
        self.store.apply([(key, body)])

    async def _publish(self, cert: certmanager.Certificate, order: StoreKey, url: str,
                       answers: list[acme_flow.Answer]) -> None:
        """Challenges stored (the gateway answers them), and checked from here as the ACME
        server will check them, before the server is asked to."""
        namespace = cert.metadata.namespace or "default"
        self._order_state(order, "pending", "", url)
        items = []
        for answer in answers:
            name = f"{order.name}-{hashlib.sha256(answer.token.encode()).hexdigest()[:10]}"
            items.append((StoreKey(ACME, "Challenge", namespace, name), {
                "apiVersion": f"{ACME}/v1", "kind": "Challenge",
                "metadata": {"name": name, "namespace": namespace,
                             "labels": {CERTIFICATE_LABEL: cert.metadata.name}},
                "spec": {"dnsName": answer.dns_name, "token": answer.token, "key": answer.key,
                         "type": "HTTP-01", "url": answer.url}}))
        if not items:
            return
        self.store.apply(items)
        await self.distributed(self.store.revision, SELF_CHECK_S)
        for answer in answers:
            await asyncio.to_thread(self._self_check, answer)

    def _self_check(self, answer: acme_flow.Answer) -> None:
        host, port = self.config.self_check
        url = f"http://{host}:{port}{PATH_PREFIX}{answer.token}"
        deadline = time.monotonic() + SELF_CHECK_S
        problem = ""
        while time.monotonic() < deadline:
            request = urllib.request.Request(url, headers={"Host": answer.dns_name})
            try:
                with urllib.request.urlopen(request, timeout=5) as response:
                    if response.read().decode().strip() == answer.key:
                        return
                    problem = "the gateway answers something else"
            except (urllib.error.URLError, OSError) as exc:
                problem = str(exc)
            time.sleep(0.2)
        raise IssuanceError(f"the gateway does not answer the HTTP-01 challenge for "
                            f"{answer.dns_name} on port 80: {problem}")

    async def _withdraw(self, cert: certmanager.Certificate) -> None:
        namespace = cert.metadata.namespace or "default"
        mine = [o.key for o in self.store.select(ACME, "Challenge", namespace)
                if (o.body.get("metadata", {}).get("labels") or {}).get(
                    CERTIFICATE_LABEL) == cert.metadata.name]
        if mine:
            self.store.delete(mine)

    # -- status -----------------------------------------------------------------------------

    def status_of(self, key: StoreKey) -> dict[str, Any] | None:
        if (key.group, key.kind) == (CERT_MANAGER, "Certificate"):
            obj = self.store.get(key)
            cert = _model(obj.body, certmanager.Certificate) if obj is not None else None
            return self._certificate_status(key, cert) if cert is not None else None
        if key.group == CERT_MANAGER and key.kind in ("Issuer", "ClusterIssuer"):
            return self._issuer_status(key)
        return None

    def _certificate_status(self, key: StoreKey, cert: certmanager.Certificate
                            ) -> dict[str, Any]:
        attempts = self._attempts.get(key) or Attempts()
        held = material.read(self._secret(cert))
        now = time.time()
        due, _ = self._due(cert, now)
        status: dict[str, Any] = {}
        if held is not None:
            leaf = held.leaf
            status.update(notBefore=iso(leaf.not_valid_before_utc),
                          notAfter=iso(leaf.not_valid_after_utc),
                          renewalTime=iso(material.renewal_time(cert, leaf)))
        # Due for renewal is still valid: only a missing, wrong or expired one is not.
        valid = held is not None and (due is None or due[0] == "Renewing")
        ready = ("True", "Ready", "Certificate is up to date and has not expired") if valid \
            else ("False", due[0] if due else "DoesNotExist", due[1] if due else "")
        conditions = [self._condition(attempts, "Ready", *ready)]
        if attempts.running:
            conditions.append(self._condition(attempts, "Issuing", "True", attempts.reason,
                                              attempts.message))
        elif attempts.failures:
            conditions.append(self._condition(
                attempts, "Issuing", "False", "Failed",
                f"The certificate request has failed to complete and will be retried: "
                f"{attempts.last_failure}"))
            status.update(lastFailureTime=attempts.last_failure_time,
                          failedIssuanceAttempts=attempts.failures)
        elif due is not None:
            conditions.append(self._condition(attempts, "Issuing", "True", *due))
        status["conditions"] = conditions
        return status

    @staticmethod
    def _condition(attempts: Attempts, kind: str, status: str, reason: str, message: str
                   ) -> dict[str, Any]:
        before = attempts.transitions.get(kind)
        if before is None or before[0] != status:
            before = (status, utc_now())
            attempts.transitions[kind] = before
        return {"type": kind, "status": status, "reason": reason, "message": message,
                "lastTransitionTime": before[1]}

    def _issuer_status(self, key: StoreKey) -> dict[str, Any] | None:
        obj = self.store.get(key)
        model_type = certmanager.ClusterIssuer if key.kind == "ClusterIssuer" else \
            certmanager.Issuer
        issuer = _model(obj.body, model_type) if obj is not None else None
        if issuer is None:
            return None
        spec = issuer.spec
        namespace = CLUSTER_RESOURCE_NAMESPACE if key.kind == "ClusterIssuer" else key.namespace
        ready = ("True", "IsReady", "Signing CA verified" if spec.ca else "")
        if spec.ca is not None and self.store.get(
                StoreKey("", "Secret", namespace, spec.ca.secret_name)) is None:
            ready = ("False", "ErrGetKeyPair",
                     f"Error getting keypair for CA issuer: secret {spec.ca.secret_name!r} "
                     "not found")
        elif spec.acme is not None:
            ref = spec.acme.private_key_secret_ref
            ready = ("True", "ACMEAccountKeyStored",
                     "The ACME account key is stored; the account is registered (or found) "
                     "with the first order") if self.store.get(
                StoreKey("", "Secret", namespace, ref.name)) is not None else (
                "False", "ACMEAccountKeyMissing",
                f"The account key is made, and stored in Secret {ref.name}, at the first order")
        elif spec.vault is not None or spec.venafi is not None:
            ready = ("False", "NotImplemented", "bastion does not implement this issuer type")
        return {"conditions": [{"type": "Ready", "status": ready[0], "reason": ready[1],
                                "message": ready[2]}]}


def _issuer_id(cert: certmanager.Certificate) -> IssuerId:
    ref = cert.spec.issuer_ref
    return ref.name, ref.kind, ref.group


def _model(body: dict[str, Any], model_type: type[Any]) -> Any:
    verdict = admit(body)
    if isinstance(verdict, Admitted) and isinstance(verdict.model, model_type):
        return verdict.model
    return None
