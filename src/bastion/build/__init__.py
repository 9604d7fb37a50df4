"""The pure core: stored objects to one neutral configuration (IR) per gateway group."""

from bastion.build.build import Build, Delta, GatewayBuild, build
from bastion.build.inputs import Inputs

__all__ = ["Build", "Delta", "GatewayBuild", "Inputs", "build"]
