"""The rule registry: adding a rule = adding a file and a line here."""

from __future__ import annotations

from vsockport.rules.address_family import AddressFamily
from vsockport.rules.asyncio_endpoints import AsyncioEndpoints
from vsockport.rules.base import Example, Finding, PortOptions, Rule, run_rules
from vsockport.rules.bind_address import BindAddress
from vsockport.rules.connect_address import ConnectAddress
from vsockport.rules.create_connection import CreateConnection
from vsockport.rules.ctypes_sockaddr import CtypesSockaddr
from vsockport.rules.datagram import Datagram
from vsockport.rules.family_comparison import FamilyComparison
from vsockport.rules.getaddrinfo import GetAddrInfo
from vsockport.rules.ip_address_use import IpAddressUse
from vsockport.rules.local_pair import LocalPair
from vsockport.rules.socket_module_value import SocketModuleValue
from vsockport.rules.stdlib_clients import StdlibClients
from vsockport.rules.stdlib_servers import StdlibServers
from vsockport.rules.tcp_option import TcpOption

ALL_RULES: tuple[type[Rule], ...] = (
    AddressFamily,
    FamilyComparison,
    BindAddress,
    ConnectAddress,
    CreateConnection,
    CtypesSockaddr,
    GetAddrInfo,
    TcpOption,
    AsyncioEndpoints,
    StdlibServers,
    StdlibClients,
    Datagram,
    LocalPair,
    IpAddressUse,
    SocketModuleValue,
)


def find_rule(key: str) -> type[Rule] | None:
    """A rule by code (`VS003`) or name (`bind-address`), case-insensitive."""
    key = key.strip().lower()
    return next((r for r in ALL_RULES if key in (r.code.lower(), r.name.lower())), None)


__all__ = ["ALL_RULES", "Example", "Finding", "PortOptions", "Rule", "find_rule", "run_rules"]
