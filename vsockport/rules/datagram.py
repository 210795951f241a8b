from __future__ import annotations

import libcst as cst

from vsockport.rules.api import Example, Rule
from vsockport.rules.helpers import source_of
from vsockport.rules.vocabulary import SOCKET_CLASSES, UDP_SERVERS, family_argument, is_datagram, is_other_family

_KEPT = ("stays on UDP/IP: vsock datagrams exist only on VMware's VMCI transport (virtio, Hyper-V and Nitro have "
         "none); move the protocol to SOCK_STREAM, keep it on an IP network, or port it for VMware with "
         "--vmci-datagrams")
_VMCI = ("ported to vsock datagrams, which exist only on VMware's VMCI transport: on virtio (KVM, Firecracker, "
         "Nitro) and Hyper-V socket() fails with ENODEV")


class Datagram(Rule):
    """Report UDP sockets: vsock datagrams exist only on VMware's VMCI transport.

    ## What it does
    Reports every `SOCK_DGRAM` socket that is created, every `socketserver` UDP server, and every
    asyncio `loop.create_datagram_endpoint(...)`.

    vsockport's datagram policy: by default datagram sockets stay on IP, untouched (VS001, VS003,
    VS004 and VS010 leave them and their addresses alone), and each one is reported here as work to
    review, so a program that serves both UDP and TCP keeps its TCP half working over vsock. With
    `--vmci-datagrams` (`vmci-datagrams = true`), for VMware guests, they are ported like streams: the
    family becomes `afVMCI`, both ends' addresses become CIDs, and each is still reported, since it
    runs only on VMCI.

    ## Why
    On virtio (KVM, QEMU, Firecracker, Cloud Hypervisor, Nitro) and Hyper-V there are no vsock
    datagrams: a ported UDP socket fails with `ENODEV` at creation, taking down a program whose TCP
    half would have worked. What a UDP protocol should become (a stream, an IP network kept beside
    vsock, VMware only) is a decision for a person.

    ## Example
    ```python
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    ```
    is reported, and stays a UDP socket.

    ## Fix safety
    Report only.
    """

    code = "VS012"
    name = "datagram"
    fix_safety = "none"
    triggers = (b"SOCK_DGRAM", b"create_datagram_endpoint", b"UDPServer")
    references = UDP_SERVERS
    examples = (
        Example("import socket\ns = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\n"),
        Example("import socket\nu = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n", None, ("VS012",)),
        Example("import socket\nfrom vsock_runtime import vsock_socket\nu = vsock_socket(socket.AF_INET, socket.SOCK_DGRAM)\n",
                None, ("VS012",)),
        Example("from socket import *\nu = socket(type=SOCK_DGRAM)\n", None, ("VS012",)),
        Example("import asyncio\nasync def f(loop, P):\n    await loop.create_datagram_endpoint(P, local_addr=('0.0.0.0', 9))\n",
                None, ("VS012",)),
        Example("import socketserver\nclass Echo(socketserver.ThreadingUDPServer):\n    pass\n", None, ("VS012",)),
        Example("import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_STREAM)\n"),
    )

    def _policy(self) -> str:
        return _VMCI if self.options.vmci_datagrams else _KEPT

    def reference(self, node: cst.BaseExpression, qualified: str) -> None:
        self.report(node, f"{source_of(node)} serves UDP: it {self._policy()}")

    def visit_Call(self, node: cst.Call) -> None:
        func = node.func
        if isinstance(func, cst.Attribute) and func.attr.value == "create_datagram_endpoint":
            self.report(node, f"{source_of(func)}() opens an IP datagram endpoint: not ported; use SOCK_STREAM "
                              "over vsock, or vsock datagrams on VMware only")
            return
        ported = self.names.is_runtime_name(func) and isinstance(func, cst.Name) and func.value == "vsock_socket"
        if self.qualified(func) not in SOCKET_CLASSES and not ported:
            return  # (a ported UDP socket is reported on every run: it still needs review)
        if not is_datagram(self.names, node):
            return
        family = family_argument(node)
        if family is not None and is_other_family(self.names, family.value) and not self.names.is_runtime_name(family.value):
            return  # AF_UNIX and the like
        self.report(node, f"SOCK_DGRAM socket: it {self._policy()}")
