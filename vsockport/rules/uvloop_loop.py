from __future__ import annotations

import libcst as cst

from vsockport.rules.api import Example, Rule, runtime_name
from vsockport.rules.helpers import source_of

# uvloop's names that choose its loop; the rest of its API (its version, its C types) stays its own.
_LOOP_NAMES = ("EventLoopPolicy", "Loop", "new_event_loop", "install", "run")


class UvloopLoop(Rule):
    """Keep a program that chooses uvloop on asyncio's own event loop, which can carry vsock.

    ## What it does
    Replaces uvloop's names that choose an event loop (`uvloop.EventLoopPolicy`, `uvloop.Loop`,
    `uvloop.new_event_loop`, `uvloop.install`, `uvloop.run`, also when imported from uvloop) with the
    same names of the runtime's `vsock_uvloop`, which are asyncio's: `asyncio.DefaultEventLoopPolicy`,
    `asyncio.SelectorEventLoop`, `asyncio.new_event_loop()`, a policy install and `asyncio.run()`.

    ## Why
    uvloop runs its sockets in libuv, in C: libuv sets `TCP_NODELAY` on every connection it accepts, an
    error on a vsock socket that closes the connection at once, and has no address type for a CID.
    asyncio's own loop takes the ported vsock sockets as they are. A server that picks uvloop when it
    is installed (uvicorn's default loop, Sanic, `uvloop.install()` in a main) would otherwise listen on
    vsock and drop every client.

    ## Example
    ```python
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    ```
    becomes
    ```python
    asyncio.set_event_loop_policy(vsock_uvloop.EventLoopPolicy())
    ```

    ## Fix safety
    Safe: the same calls on asyncio's loop, which is slower than uvloop's (about half its speed on
    small messages in uvloop's own benchmarks). `uvloop.run(main, loop_factory=...)` ignores the factory.
    """

    code = "VS018"
    name = "uvloop-loop"
    triggers = (b"uvloop",)
    words = (b"uvloop",)
    references = frozenset(f"uvloop.{name}" for name in _LOOP_NAMES)
    examples = (
        Example(
            "import asyncio\nimport uvloop\nasyncio.set_event_loop_policy(uvloop.EventLoopPolicy())\n",
            "import asyncio\nimport uvloop\nfrom vsock_runtime import vsock_uvloop\n"
            "asyncio.set_event_loop_policy(vsock_uvloop.EventLoopPolicy())\n",
            ("VS018",),
        ),
        Example(
            "from uvloop import install, new_event_loop\ninstall()\nloop = new_event_loop()\n",
            "from uvloop import install, new_event_loop\nfrom vsock_runtime import vsock_uvloop\n"
            "vsock_uvloop.install()\nloop = vsock_uvloop.new_event_loop()\n",
            ("VS018", "VS018"),
        ),
        # A type check is left as it is: asyncio's policy is not uvloop's, so code that installs uvloop's
        # when it is missing (Sanic) goes on to install vsock_uvloop's.
        Example(
            "import uvloop\nif not isinstance(policy, uvloop.EventLoopPolicy):\n    uvloop.run(main())\n",
            "import uvloop\nfrom vsock_runtime import vsock_uvloop\nif not isinstance(policy, uvloop.EventLoopPolicy):\n"
            "    vsock_uvloop.run(main())\n",
            ("VS018",),
        ),
        # uvloop's other names, and names of the same spelling that are not uvloop's, stay.
        Example("import uvloop\nprint(uvloop.__version__)\nclass Server:\n    def install(self):\n        pass\n"),
    )

    def reference(self, node: cst.BaseExpression, qualified: str) -> None:
        attribute = qualified.rpartition(".")[2]
        self.report(node, f"uvloop's event loop ({source_of(node)}) cannot carry vsock: libuv sets TCP_NODELAY "
                          f"on accepted sockets in C -> vsock_uvloop.{attribute}, asyncio's loop",
                    replacement=cst.Attribute(value=runtime_name("vsock_uvloop"), attr=cst.Name(attribute)))
