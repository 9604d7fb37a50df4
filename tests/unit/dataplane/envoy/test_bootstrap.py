from __future__ import annotations

from bastion.dataplane.envoy.bootstrap import DEFAULT_STATS_PREFIXES, build_bootstrap


def bootstrap(*prefixes: str) -> dict:
    return build_bootstrap("node", "gw", "istio-system", {}, "/tmp/x.sock",
                           stats_prefixes=prefixes)


def prefixes(config: dict) -> list[str]:
    patterns = config["stats_config"]["stats_matcher"]["inclusion_list"]["patterns"]
    return [p["prefix"] for p in patterns]


def test_statistics_default_to_istios_inclusion_list() -> None:
    assert prefixes(bootstrap()) == list(DEFAULT_STATS_PREFIXES)
    assert "cluster.xds-grpc" in DEFAULT_STATS_PREFIXES


def test_extra_prefixes_are_added_once() -> None:
    assert prefixes(bootstrap("listener.", "server")) == [*DEFAULT_STATS_PREFIXES, "listener."]


def test_an_empty_prefix_keeps_every_statistic() -> None:
    assert bootstrap("")["stats_config"] == {}
