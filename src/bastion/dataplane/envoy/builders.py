"""Small builders named after the Envoy messages they make. They hold Envoy's vocabulary and the
edge-safe defaults, apart from the code that walks the IR."""

from __future__ import annotations

from envoy.config.core.v3 import address_pb2, config_source_pb2
from envoy.extensions.transport_sockets.tls.v3 import secret_pb2
from google.protobuf import any_pb2, duration_pb2, wrappers_pb2
from google.protobuf.message import Message

ADS_CONFIG = config_source_pb2.ConfigSource(
    ads=config_source_pb2.AggregatedConfigSource(),
    resource_api_version=config_source_pb2.ApiVersion.V3,
)


def typed(message: Message) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


def ms(value: int) -> duration_pb2.Duration:
    return duration_pb2.Duration(seconds=value // 1000, nanos=(value % 1000) * 1_000_000)


def seconds(value: int) -> duration_pb2.Duration:
    return duration_pb2.Duration(seconds=value)


def u32(value: int) -> wrappers_pb2.UInt32Value:
    return wrappers_pb2.UInt32Value(value=value)


def socket_address(address: str, port: int) -> address_pb2.Address:
    return address_pb2.Address(
        socket_address=address_pb2.SocketAddress(address=address, port_value=port))


def ads_config_source() -> config_source_pb2.ConfigSource:
    copy = config_source_pb2.ConfigSource()
    copy.CopyFrom(ADS_CONFIG)
    return copy


def sds_secret_config(name: str) -> secret_pb2.SdsSecretConfig:
    return secret_pb2.SdsSecretConfig(name=name, sds_config=ads_config_source())
