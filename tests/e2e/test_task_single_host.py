"""The first part of Istio's Secure Gateways task, with the task's own commands (`bastion` in
place of `kubectl`), real Envoy, real openssl and curl, and the real httpbin."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.harness import TEAPOT, Backend, Bastion, curl, make_leaf, make_root
from tests.manifests import sample_manifest

GATEWAY = """cat <<EOF | bastion apply -f -
apiVersion: networking.istio.io/v1alpha3
kind: Gateway
metadata:
  name: mygateway
spec:
  selector:
    istio: ingressgateway # use istio default ingress gateway
  servers:
  - port:
      number: 443
      name: https
      protocol: HTTPS
    tls:
      mode: SIMPLE
      credentialName: httpbin-credential # must be the same as secret
    hosts:
    - httpbin.example.com
EOF
"""

VIRTUAL_SERVICE = """cat <<EOF | bastion apply -f -
apiVersion: networking.istio.io/v1alpha3
kind: VirtualService
metadata:
  name: httpbin
spec:
  hosts:
  - "httpbin.example.com"
  gateways:
  - mygateway
  http:
  - match:
    - uri:
        prefix: /status
    - uri:
        prefix: /delay
    route:
    - destination:
        port:
          number: 8000
        host: httpbin
EOF
"""

CURL_418 = ('curl -v -HHost:httpbin.example.com --resolve '
            '"httpbin.example.com:$SECURE_INGRESS_PORT:$INGRESS_HOST" --cacert example.com.crt '
            '"https://httpbin.example.com:$SECURE_INGRESS_PORT/status/418"')


def apply_httpbin_sample(bastion: Bastion, httpbin: Backend) -> None:
    manifest = sample_manifest(bastion.cli("samples", "manifest", "httpbin").stdout,
                               httpbin.port)
    out = bastion.cli("apply", "-f", "-", input=manifest).stdout
    assert "service/httpbin created" in out and "endpoints/httpbin created" in out


def test_single_host_https(bastion: Bastion, httpbin: Backend, tmp_path: Path) -> None:
    make_root(tmp_path)
    make_leaf(tmp_path, "httpbin.example.com", "httpbin organization", 0)
    apply_httpbin_sample(bastion, httpbin)

    created = bastion.shell("bastion create -n istio-system secret tls httpbin-credential "
                            "--key=httpbin.example.com.key --cert=httpbin.example.com.crt")
    assert created.returncode == 0, created.stderr
    assert created.stdout.strip() == "secret/httpbin-credential created"
    gateway = bastion.shell(GATEWAY)
    assert gateway.stdout.strip() == "gateway.networking.istio.io/mygateway created", gateway.stderr
    vs = bastion.shell(VIRTUAL_SERVICE)
    assert vs.stdout.strip() == "virtualservice.networking.istio.io/httpbin created", vs.stderr

    waited = bastion.shell("bastion wait --for=distribution --timeout 10s virtualservice httpbin")
    assert waited.returncode == 0, waited.stderr
    env = bastion.shell('eval "$(bastion env)" && echo "$INGRESS_HOST $SECURE_INGRESS_PORT"')
    assert env.stdout.split() == ["127.0.0.1", str(bastion.secure_port)]

    # The task's exact curl line, once, right after the wait.
    result = bastion.shell(CURL_418)
    assert result.returncode == 0, result.stderr
    assert "HTTP/2 418" in result.stderr
    assert TEAPOT in result.stdout
    assert "server: istio-envoy" in result.stderr

    # A path the VirtualService does not route: 404 from the gateway.
    unrouted = curl("httpbin.example.com", bastion.secure_port, "/headers",
                    tmp_path / "example.com.crt")
    assert unrouted.returncode == 0, unrouted.stderr
    assert "HTTP/2 404" in unrouted.stderr

    # An SNI no server has: refused in the handshake, so no HTTP response at all.
    unknown = curl("other.example.com", bastion.secure_port, "/status/418",
                   tmp_path / "example.com.crt")
    assert unknown.returncode == 35, unknown.stderr  # curl: SSL connect error
    assert "< HTTP/" not in unknown.stderr

    # The gateway accepted everything it was sent.
    gateways = bastion.status()["gateways"]
    assert gateways and gateways[0]["inSync"]
    assert all(t["nacks"] == 0 for t in gateways[0]["types"].values())

    # The task's cleanup, word for word.
    cleanup = bastion.shell(
        "bastion delete gateway mygateway && "
        "bastion delete virtualservice httpbin && "
        "bastion delete --ignore-not-found=true -n istio-system secret httpbin-credential "
        "helloworld-credential && "
        "bastion delete --ignore-not-found=true virtualservice helloworld-v1 && "
        "bastion delete deployment --ignore-not-found=true httpbin helloworld-v1 && "
        "bastion delete service --ignore-not-found=true httpbin helloworld-v1")
    assert cleanup.returncode == 0, cleanup.stderr
    assert 'gateway.networking.istio.io "mygateway" deleted' in cleanup.stdout
    assert 'secret "httpbin-credential" deleted' in cleanup.stdout
    assert bastion.cli("get", "gw", "-o", "name").stdout == ""
    # `delete -f` takes the same manifests `apply -f` does.
    manifest = sample_manifest(bastion.cli("samples", "manifest", "httpbin").stdout,
                               httpbin.port)
    bastion.cli("apply", "-f", "-", input=manifest)
    deleted = bastion.cli("delete", "-f", "-", input=manifest).stdout
    assert 'service "httpbin" deleted' in deleted and 'endpoints "httpbin" deleted' in deleted
