"""kubectl's conventions on the running gateway: its Service and Pod are read-only, the output
formats and selectors, and `logs` by pod name with --tail, --since and -c."""

from __future__ import annotations

from tests.e2e.harness import Bastion


def test_the_gateway_objects_are_read_only(bastion: Bastion) -> None:
    refused = bastion.cli("delete", "-n", "istio-system", "service", "istio-ingressgateway",
                          check=False)
    assert refused.returncode == 1
    assert "made by bastion from the running gateway and cannot be changed" in refused.stderr
    applied = bastion.cli("apply", "-f", "-", check=False, input=(
        "apiVersion: v1\nkind: Service\nmetadata: {name: istio-ingressgateway, namespace: "
        "istio-system}\nspec: {ports: [{port: 1}]}\n"))
    assert applied.returncode == 1 and "cannot be changed" in applied.stderr
    assert bastion.cli("get", "-n", "istio-system", "svc", "istio-ingressgateway", "-o",
                       "jsonpath={.spec.type}").stdout == "LoadBalancer"


def test_output_formats_and_selectors(bastion: Bastion) -> None:
    ns = ("-n", "istio-system")
    wide = bastion.cli("get", *ns, "pods", "-o", "wide", "--show-labels").stdout.splitlines()
    assert wide[0].split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE",
                               "LABELS"]
    assert "1/1" in wide[1] and "Running" in wide[1] and "istio=ingressgateway" in wide[1]
    columns = bastion.cli("get", *ns, "svc", "-o",
                          "custom-columns=NAME:.metadata.name,IP:.status.loadBalancer.ingress[0].ip"
                          ).stdout.splitlines()
    assert columns[0].split() == ["NAME", "IP"]
    assert columns[1].split() == ["istio-ingressgateway", "127.0.0.1"]
    assert bastion.cli("get", *ns, "pods", "-l", "istio in (ingressgateway),app",
                       "-o", "name").stdout.startswith("pod/istio-ingressgateway-")
    assert bastion.cli("get", *ns, "pods", "-l", "istio=egressgateway", "-o", "name"
                       ).stdout == ""
    assert bastion.cli("get", *ns, "svc", "--field-selector",
                       "metadata.name=istio-ingressgateway", "-o", "name").stdout.strip() == (
        "service/istio-ingressgateway")
    bad = bastion.cli("get", "pods", "-o", "yamlish", check=False)
    assert bad.returncode == 1 and "allowed formats are" in bad.stderr
    gateway = bastion.cli("get", *ns, "deployments")
    assert "istio-ingressgateway   1/1" in gateway.stdout and not gateway.stderr
    bastion.cli("apply", "-f", "-", input=(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  selector: "
        "{matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n"
        "    spec: {containers: [{name: web, image: nginx}]}\n"))
    deployments = bastion.cli("get", "deployments")
    assert "deployments are stored, not run" in deployments.stderr


def test_logs_of_the_gateway_pod(bastion: Bastion) -> None:
    pod = bastion.cli("get", "pods", "-n", "istio-system", "-o",
                      "jsonpath={.items[0].metadata.name}").stdout
    out = bastion.cli("logs", "-n", "istio-system", pod, "-c", "istio-proxy", "--tail", "2")
    lines = out.stdout.splitlines()
    assert len(lines) == 2 and all("][info][" in line or "][warning][" in line
                                   for line in lines), lines
    assert bastion.cli("logs", "-n", "istio-system", pod, "--since", "1h").stdout
    wrong = bastion.cli("logs", "-n", "istio-system", pod, "-c", "nope", check=False)
    assert wrong.returncode == 1 and "container nope is not valid" in wrong.stderr
    by_label = bastion.cli("logs", "-n", "istio-system", "-l", "istio=ingressgateway",
                           "--tail", "1").stdout
    assert by_label.strip()
    by_deployment = bastion.cli("logs", "-n", "istio-system", "deploy/istio-ingressgateway",
                                "--tail", "1").stdout
    assert by_deployment == by_label
