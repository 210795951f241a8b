from __future__ import annotations

import libcst as cst

from vsockport.rules.api import Example, Rule, runtime_name
from vsockport.rules.helpers import call_to, is_value_use, keywords, positional, source_of
from vsockport.rules.vocabulary import ASYNCIO_FUNCTIONS, LOOP_METHODS, is_event_loop


def _brings_its_own_endpoint(call: cst.Call, first_host: int) -> bool:
    """The call gives a Unix path, or a socket and no host or port: nothing to port. A `sock=` passed
    along with a host and port may be None (a parameter handed on): then the host and port count, and
    the runtime hands a real socket to asyncio as it is."""
    named = keywords(call)
    if "path" in named:
        return True
    if "sock" not in named:
        return False
    return not ({"host", "port"} & named) and len(positional(call)) <= first_host


class AsyncioEndpoints(Rule):
    """Open asyncio connections and servers on vsock sockets.

    ## What it does
    Rewrites calls that take a host and a port:
    - `asyncio.open_connection(...)` becomes `vsock_open_connection(...)`.
    - `asyncio.start_server(...)` becomes `vsock_start_server(...)`.
    - `loop.create_connection(...)` becomes `vsock_loop_create_connection(loop, ...)`.
    - `loop.create_server(...)` becomes `vsock_loop_create_server(loop, ...)`.
    - `loop.getaddrinfo(...)`, whose answers make the sockets of asyncio frameworks, becomes
      `vsock_loop_getaddrinfo(loop, ...)`.
    - A loop's method kept for a later call (`partial(loop.create_server, factory)`) becomes
      `vsock_loop(loop).create_server`, and so on.

    A loop is recognised as a name or attribute called `loop` or `*_loop`, or a call to
    `asyncio.get_event_loop()`, `asyncio.get_running_loop()` or `asyncio.new_event_loop()`. Calls that
    pass `path=`, or `sock=` and no host or port, are left alone. A call that forwards a `sock=` that
    may be None along with a host and port (`create_server(factory, host, port, sock=sock)`) is ported:
    the runtime hands a real socket to asyncio as it is, and serves vsock when there is none; so does it
    for a `sock=` that arrives inside `**kwargs`.

    ## Why
    asyncio resolves hosts with `getaddrinfo` and opens IP sockets, so it cannot reach vsock by itself.
    It does accept ready-made sockets through `sock=`. The runtime's coroutines:
    - create a vsock socket and map the host to a CID (the server binds with port 0 meaning
      `VMADDR_PORT_ANY`);
    - connect without blocking through `loop.sock_connect`;
    - hand the socket to the original call with every other argument;
    - drop IP-only arguments (`family`, `flags`, `reuse_port`, `happy_eyeballs_delay`, ...);
    - use the host as `server_hostname` for TLS.

    ## Example
    ```python
    reader, writer = await asyncio.open_connection("localhost", 6379)
    server = await loop.create_server(Protocol, host="0.0.0.0", port=8000, backlog=100)
    ```
    becomes
    ```python
    reader, writer = await vsock_open_connection("localhost", 6379)
    server = await vsock_loop_create_server(loop, Protocol, host="0.0.0.0", port=8000, backlog=100)
    ```

    ## Fix safety
    Safe for the recognised forms. A loop held under another name is not recognised: its
    `create_server`/`create_connection` stays on TCP/IP and is not reported.
    """

    code = "VS009"
    name = "asyncio-endpoints"
    references = frozenset(ASYNCIO_FUNCTIONS)
    triggers = (b"open_connection", b"start_server", b"create_connection", b"create_server", b"getaddrinfo")
    examples = (
        Example(
            "import asyncio\nasync def main():\n    r, w = await asyncio.open_connection('localhost', 6379)\n",
            "import asyncio\nfrom vsock_runtime import vsock_open_connection\nasync def main():\n"
            "    r, w = await vsock_open_connection('localhost', 6379)\n",
            ("VS009",),
        ),
        Example(
            "import asyncio\nasync def main(cb):\n    await asyncio.start_server(cb, '0.0.0.0', 8888)\n",
            "import asyncio\nfrom vsock_runtime import vsock_start_server\nasync def main(cb):\n"
            "    await vsock_start_server(cb, '0.0.0.0', 8888)\n",
            ("VS009",),
        ),
        Example(
            "import asyncio\nasync def main(P, config):\n    loop = asyncio.get_running_loop()\n"
            "    await loop.create_server(P, host=config.host, port=config.port)\n",
            "import asyncio\nfrom vsock_runtime import vsock_loop_create_server\nasync def main(P, config):\n"
            "    loop = asyncio.get_running_loop()\n"
            "    await vsock_loop_create_server(loop, P, host=config.host, port=config.port)\n",
            ("VS009",),
        ),
        Example(
            "import asyncio\nasync def main(self, P):\n    await self._loop.create_connection(P, 'db', 5432)\n",
            "import asyncio\nfrom vsock_runtime import vsock_loop_create_connection\nasync def main(self, P):\n"
            "    await vsock_loop_create_connection(self._loop, P, 'db', 5432)\n",
            ("VS009",),
        ),
        Example(
            "import asyncio, functools\nasync def main(self, P):\n"
            "    serve = functools.partial(self.loop.create_server, P)\n    infos = await self.loop.getaddrinfo('db', 5432)\n",
            "import asyncio, functools\nfrom vsock_runtime import vsock_loop, vsock_loop_getaddrinfo\nasync def main(self, P):\n"
            "    serve = functools.partial(vsock_loop(self.loop).create_server, P)\n"
            "    infos = await vsock_loop_getaddrinfo(self.loop, 'db', 5432)\n",
            ("VS009", "VS009"),
        ),
        Example(
            "import asyncio\nasync def serve(loop, P, host, port, sock=None):\n"
            "    return await loop.create_server(P, host, port, sock=sock)\n",
            "import asyncio\nfrom vsock_runtime import vsock_loop_create_server\nasync def serve(loop, P, host, port, sock=None):\n"
            "    return await vsock_loop_create_server(loop, P, host, port, sock=sock)\n",
            ("VS009",),
        ),
        Example("import asyncio\nasync def main(s):\n    await asyncio.open_connection(sock=s)\n"
                "    await asyncio.open_connection(path='/run/app.sock')\n"),
        Example("import asyncio\nasync def main(P):\n    await loop.create_server(P, sock=s)\n"),
    )

    def reference(self, node: cst.BaseExpression, qualified: str) -> None:
        """asyncio.open_connection / start_server, called or kept as a value."""
        call = self.parents(node)
        if isinstance(call, cst.Call) and call.func is node and _brings_its_own_endpoint(call, 0 if "open" in qualified else 1):
            return
        replacement = ASYNCIO_FUNCTIONS[qualified]
        self.report(node, f"{source_of(node)}() opens an IP socket -> {replacement}()", replacement=runtime_name(replacement))

    def visit_Call(self, node: cst.Call) -> None:
        func = node.func
        if not isinstance(func, cst.Attribute) or func.attr.value not in LOOP_METHODS:
            return
        if not self._is_loop(func.value) or not node.args or _brings_its_own_endpoint(node, 1):
            return
        replacement = LOOP_METHODS[func.attr.value]
        self.report(node, f"{source_of(func)}() {self._what(func)} -> {replacement}()", replacement=node.with_changes(
            func=runtime_name(replacement), args=[cst.Arg(func.value), *node.args]))

    def visit_Attribute(self, node: cst.Attribute) -> None:
        """A loop's method kept for later: `partial(loop.create_server, ...)`."""
        if node.attr.value not in LOOP_METHODS or not self._is_loop(node.value):
            return
        parent = self.parents(node)
        if isinstance(parent, cst.Call) and parent.func is node:
            return  # a call: visit_Call's
        if is_value_use(node, self.parents, self.names):
            self.report(node, f"{source_of(node)}, kept for a later call, {self._what(node)} -> "
                              f"vsock_loop({source_of(node.value)}).{node.attr.value}",
                        replacement=node.with_changes(value=call_to(runtime_name("vsock_loop"), node.value)))

    @staticmethod
    def _what(method: cst.Attribute) -> str:
        return "resolves IP addresses" if method.attr.value == "getaddrinfo" else "opens an IP socket"

    def _is_loop(self, node: cst.BaseExpression) -> bool:
        return is_event_loop(node, self.qualified)
