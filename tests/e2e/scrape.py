"""Reading a running gateway's Prometheus endpoint, as Prometheus parses it."""

from __future__ import annotations

import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.harness import Bastion

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(bastion: Bastion) -> tuple[str, Samples]:
    with urllib.request.urlopen(f"http://127.0.0.1:{bastion.metrics_port}/metrics",
                                timeout=5) as response:
        text = response.read().decode()
    samples = {(s.name, frozenset(s.labels.items())): s.value
               for family in text_string_to_metric_families(text) for s in family.samples}
    return text, samples


def value(samples: Samples, name: str,
          **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))
