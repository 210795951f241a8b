from __future__ import annotations

import libcst as cst

from vsockport.rules.api import Example, Rule, ported_example, runtime_name
from vsockport.rules.helpers import argument, source_of

_READS = {"recv": "vsock_recv", "recv_into": "vsock_recv_into"}
_FLAGS_POSITION = {"recv": 1, "recv_into": 2}


class WaitallRead(Rule):
    """Make reads that wait for all their bytes (`MSG_WAITALL`) work for any size on vsock.

    ## What it does
    `sock.recv(size, socket.MSG_WAITALL)` becomes `vsock_recv(sock, size, socket.MSG_WAITALL)`, and
    `sock.recv_into(buffer, size, socket.MSG_WAITALL)` becomes `vsock_recv_into(sock, buffer, size,
    socket.MSG_WAITALL)`: any `recv`/`recv_into` call whose flags name `MSG_WAITALL`.

    ## Why
    Linux vsock refuses a `MSG_WAITALL` read that asks for at least the socket's receive buffer
    (`SO_VM_SOCKETS_BUFFER_SIZE`, 256 KiB by default) with `ENOMEM`, before reading anything; TCP waits
    for all of it. Programs that read whole messages so (RPC frameworks: Pyro5 reads each message with
    one `MSG_WAITALL` call) fail on their first large message. The runtime's functions make the read
    as written first, and only where vsock refused it, read the same bytes in parts of half the buffer
    (one part on a socket with a timeout, where TCP too gives what has arrived).

    ## Example
    ```python
    data = sock.recv(size, socket.MSG_WAITALL)
    ```
    becomes
    ```python
    data = vsock_recv(sock, size, socket.MSG_WAITALL)
    ```

    ## Fix safety
    Safe: the call is the object's own `recv`/`recv_into`, with the same arguments, whatever the object
    is (a TCP socket, a wrapper); only a vsock stream's `ENOMEM` for a `MSG_WAITALL` read is answered
    differently. Flags computed elsewhere (`flags = socket.MSG_WAITALL`, then `recv(n, flags)`) are
    not seen.
    """

    code = "VS020"
    name = "waitall-read"
    triggers = (b"MSG_WAITALL",)
    words = (b"MSG_WAITALL",)
    examples = (
        ported_example("data = sock.recv(size, socket.MSG_WAITALL)\n", "vsock_recv",
                       "data = vsock_recv(sock, size, socket.MSG_WAITALL)\n", ("VS020",)),
        ported_example("count = self.sock.recv_into(view, flags=socket.MSG_WAITALL | socket.MSG_NOSIGNAL)\n",
                       "vsock_recv_into",
                       "count = vsock_recv_into(self.sock, view, flags=socket.MSG_WAITALL | socket.MSG_NOSIGNAL)\n",
                       ("VS020",)),
        Example("import socket\nhead = sock.recv(4, socket.MSG_PEEK)\nrest = sock.recv(size)\n"
                "left = sock.recv(size, MSG_WAITALL_IS_A_NAME_NOT_THE_FLAG)\n"),
    )

    def visit_Call(self, node: cst.Call) -> None:
        func = node.func
        if not isinstance(func, cst.Attribute) or func.attr.value not in _READS:
            return
        if any(arg.star for arg in node.args):
            return
        flags = argument(node, _FLAGS_POSITION[func.attr.value], "flags")
        if flags is None or not self._names_waitall(flags.value):
            return
        replacement_name = _READS[func.attr.value]
        replacement = node.with_changes(func=runtime_name(replacement_name),
                                        args=(cst.Arg(func.value), *node.args))
        self.report(node, f"{source_of(node)} waits for all its bytes (MSG_WAITALL), which vsock refuses "
                          f"(ENOMEM) from its receive buffer's size up -> {replacement_name}()",
                    replacement=replacement)

    def _names_waitall(self, flags: cst.BaseExpression) -> bool:
        """Whether the flags name socket.MSG_WAITALL (`socket.MSG_WAITALL`, an imported `MSG_WAITALL`, in `|`s)."""
        if isinstance(flags, cst.BinaryOperation):
            return self._names_waitall(flags.left) or self._names_waitall(flags.right)
        return isinstance(flags, (cst.Name, cst.Attribute)) and self.qualified(flags) == "socket.MSG_WAITALL"
