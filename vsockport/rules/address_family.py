from __future__ import annotations

import libcst as cst

from vsockport.rules.api import Example, Rule, af_family, runtime_name
from vsockport.rules.helpers import call_to, keyword, source_of
from vsockport.rules.vocabulary import (
    ADOPTERS, C_SOCKET_CLASSES, SOCKET_CLASSES, family_argument, is_datagram, is_family_choice, is_other_family,
    may_be_datagram,
)

_HEADER = "import socket\nfrom vsock_runtime import VMCISock_GetAFValue, vsock_socket\nafVMCI = VMCISock_GetAFValue()\n"


class AddressFamily(Rule):
    """Create vsock sockets where the program creates IP sockets.

    ## What it does
    - `socket.socket(AF_INET, SOCK_STREAM)` (and `socket(...)`, `SocketType(...)`) becomes
      `vsock_socket(afVMCI, SOCK_STREAM)`, with `afVMCI = VMCISock_GetAFValue()` at the top of the
      module, as VMware's porting guide writes it. A family that is `AF_INET`, a choice between
      `AF_INET` and `AF_INET6` (`AF_INET6 if ":" in host else AF_INET`) or missing (CPython's default
      is `AF_INET`) becomes `afVMCI`; `AF_INET6` written alone stays, and `vsock_socket()` makes the
      socket vsock with the addresses IPv6 code unpacks, `(host, port, 0, 0)`; a family known only at
      run time (`socket.socket(family, ...)`) is kept, and `vsock_socket()` makes IP families vsock
      then; an adopted descriptor (`socket.socket(fileno=fd)`) keeps the family it has. A family
      written out that is not IP (`AF_UNIX`) is left alone.
    - Datagram sockets (`SOCK_DGRAM` written out) stay on IP, reported by VS012: virtio transports have
      no vsock datagrams. With `--vmci-datagrams` (VMware only) they are ported like streams. A type
      chosen at run time between `SOCK_DGRAM` and another (`SOCK_DGRAM if udp else SOCK_STREAM`) keeps
      its family as written: `vsock_socket()` makes the stream sockets vsock and keeps datagram ones on IP.
    - `socket.fromfd(fd, family, type)` becomes `vsock_fromfd(...)`, which keeps the descriptor's real
      family (a vsock descriptor stays vsock where the program says AF_INET).
    - asyncore's `self.create_socket(AF_INET, ...)` (or no family, its default) gets `afVMCI`; a family
      known only at run time gets `vsock_family(family)` (asyncore imported, or fetched by its name).
    - A reference to `socket.socket` used as a value (`factory=socket.socket`,
      `partial(socket.socket, AF_INET)`) becomes `vsock_socket`; one bound to a name
      (`_original_socket = socket.socket`), which may be used as the class too
      (`_original_socket.makefile(self)`, `isinstance(s, _original_socket)`), becomes
      `vsock_socket_type(socket.socket)`: socket.socket in every way, but the sockets it makes are
      vsock ones. A module fetched by name counts as imported: `__import__("socket").socket`, and,
      as a guess, `patcher.original("socket").socket` (wrapped the same way, which is safe whatever the
      call returns: the runtime gives back anything that is not a socket class as it is). A class that derives from
      `socket.socket`, or from the C type under it (`_socket.socket`, which gevent's sockets wrap),
      derives from `vsock_socket_class(base)` instead: its callers choose the family, and the instances
      they make with an IP family or none are vsock (datagram sockets stay IP). Where `socket.socket`
      is a type, not a factory, it stays: annotations, subscripts (`Callable[[Info], socket.socket]`),
      `isinstance` and `cast`, a mock's spec (`create_autospec(socket.socket)`, `Mock(spec=...)`), the
      object a test patches (`patch.object(socket.socket, "connect")`, `monkeypatch.setattr`),
      `getattr(socket.socket, name)` and `functools.wraps(socket.socket)`: a vsock socket is a
      socket.socket.
    - Raw C calls (`libc.socket(AF_INET, ...)`) get `afVMCI` as their family.

    ## Why
    A vSocket is a socket of the vSockets family. `vsock_socket(afVMCI, ...)` is a plain
    `socket.socket` of that family (type checks, pickling and C extensions accept it); where the
    machine has no vsock it raises a clear error instead of CPython's quiet `AF_INET` for family -1.
    The family number is not a constant everywhere (VMware's driver assigns it at run time on some
    systems): that is why it comes from `VMCISock_GetAFValue()`.

    ## Example
    ```python
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ```
    becomes
    ```python
    from vsock_runtime import VMCISock_GetAFValue, vsock_socket
    afVMCI = VMCISock_GetAFValue()
    s = vsock_socket(afVMCI, socket.SOCK_STREAM)
    ```

    ## Fix safety
    Safe: only IP stream sockets become vsock; every other argument is kept. Comparisons with
    `AF_INET` are VS002's.
    """

    code = "VS001"
    name = "address-family"
    words = (b"AF_INET", b"SocketType", b"fromfd", b"create_socket", b"_socket.socket", b"from _socket import")
    references = SOCKET_CLASSES | C_SOCKET_CLASSES | frozenset(ADOPTERS)
    examples = (
        Example("import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_STREAM)\n",
                _HEADER + "s = vsock_socket(afVMCI, socket.SOCK_STREAM)\n", ("VS001",)),
        # asked for as IPv6: the family stays, and the vsock socket's addresses read IPv6-shaped
        Example(
            "from socket import *\ns = socket(AF_INET6, SOCK_STREAM)\n",
            "from socket import *\nfrom vsock_runtime import vsock_socket\ns = vsock_socket(AF_INET6, SOCK_STREAM)\n",
            ("VS001",),
        ),
        Example(
            "import socket as s\nconn = s.socket()\nlistener = s.socket(type=s.SOCK_STREAM)\n",
            "import socket as s\nfrom vsock_runtime import VMCISock_GetAFValue, vsock_socket\nafVMCI = VMCISock_GetAFValue()\n"
            "conn = vsock_socket(afVMCI)\nlistener = vsock_socket(afVMCI, type=s.SOCK_STREAM)\n",
            ("VS001", "VS001"),
        ),
        Example(
            "import socket\ndef bind(host, family):\n    a = socket.socket(socket.AF_INET6 if ':' in host else socket.AF_INET)\n"
            "    return a, socket.socket(family, socket.SOCK_STREAM)\n",
            "import socket\nfrom vsock_runtime import VMCISock_GetAFValue, vsock_socket\nafVMCI = VMCISock_GetAFValue()\n"
            "def bind(host, family):\n    a = vsock_socket(afVMCI)\n    return a, vsock_socket(family, socket.SOCK_STREAM)\n",
            ("VS001", "VS001"),
        ),
        Example(
            "import socket\ndef open_socket(address):\n    return socket.socket(*address[:3])\n",
            "import socket\nfrom vsock_runtime import vsock_socket\ndef open_socket(address):\n    return vsock_socket(*address[:3])\n",
            ("VS001",),
        ),
        Example(
            "import socket\ninherited = socket.socket(fileno=3)\ncopy = socket.fromfd(fd, socket.AF_INET, socket.SOCK_STREAM)\n",
            "import socket\nfrom vsock_runtime import vsock_fromfd, vsock_socket\ninherited = vsock_socket(fileno=3)\n"
            "copy = vsock_fromfd(fd, socket.AF_INET, socket.SOCK_STREAM)\n",
            ("VS001", "VS001"),
        ),
        Example(
            "import functools, socket\nmake = functools.partial(socket.socket, socket.AF_INET)\n",
            "import functools, socket\nfrom vsock_runtime import vsock_socket\nmake = functools.partial(vsock_socket, socket.AF_INET)\n",
            ("VS001",),
        ),
        Example(
            "import asyncore, socket\nclass Echo(asyncore.dispatcher):\n    def __init__(self, family):\n"
            "        self.create_socket(socket.AF_INET, socket.SOCK_STREAM)\n        self.create_socket(family)\n",
            "import asyncore, socket\nfrom vsock_runtime import VMCISock_GetAFValue, vsock_family\nafVMCI = VMCISock_GetAFValue()\n"
            "class Echo(asyncore.dispatcher):\n    def __init__(self, family):\n"
            "        self.create_socket(afVMCI, socket.SOCK_STREAM)\n        self.create_socket(vsock_family(family))\n",
            ("VS001", "VS001"),
        ),
        # asyncore fetched by name (CPython's tests: import_deprecated('asyncore')), its family a parameter
        Example(
            "from test.support import warnings_helper\nasyncore = warnings_helper.import_deprecated('asyncore')\n"
            "class Server(asyncore.dispatcher):\n    def __init__(self, af):\n        self.create_socket(af, 1)\n",
            "from test.support import warnings_helper\nfrom vsock_runtime import vsock_family\n"
            "asyncore = warnings_helper.import_deprecated('asyncore')\n"
            "class Server(asyncore.dispatcher):\n    def __init__(self, af):\n        self.create_socket(vsock_family(af), 1)\n",
            ("VS001",),
        ),
        Example(
            "import ctypes\nAF_INET = 2\nfd = libc.socket(AF_INET, 1, 0)\n",
            "import ctypes\nfrom vsock_runtime import VMCISock_GetAFValue\nafVMCI = VMCISock_GetAFValue()\n"
            "AF_INET = 2\nfd = libc.socket(afVMCI, 1, 0)\n",
            ("VS001",),
        ),
        Example("import socket\nKIND = socket.SOCK_DGRAM if UDP else socket.SOCK_STREAM\n"
                "s = socket.socket(socket.AF_INET, KIND)\ns.bind(('', 0))\n",
                "import socket\nfrom vsock_runtime import vsock_socket\nKIND = socket.SOCK_DGRAM if UDP else socket.SOCK_STREAM\n"
                "s = vsock_socket(socket.AF_INET, KIND)\ns.bind(('', 0))\n", ("VS001",)),
        Example("import socket\nfrom eventlet.green import socket as green\n"
                "s = socket.socket(socket.AF_INET, green.SOCK_DGRAM if UDP else green.SOCK_STREAM)\n",
                "import socket\nfrom eventlet.green import socket as green\nfrom vsock_runtime import vsock_socket\n"
                "s = vsock_socket(socket.AF_INET, green.SOCK_DGRAM if UDP else green.SOCK_STREAM)\n", ("VS001",)),
        Example("import socket\n_original_socket = socket.socket\nclass Green:\n"
                "    def makefile(self, *args):\n        return _original_socket.makefile(self, *args)\n",
                "import socket\nfrom vsock_runtime import vsock_socket_type\n_original_socket = vsock_socket_type(socket.socket)\n"
                "class Green:\n    def makefile(self, *args):\n        return _original_socket.makefile(self, *args)\n",
                ("VS001",)),
        Example("import eventlet\n_original_socket = eventlet.patcher.original('socket').socket\n"
                "s = __import__('socket').socket(__import__('socket').AF_INET)\n",
                "import eventlet\nfrom vsock_runtime import VMCISock_GetAFValue, vsock_socket, vsock_socket_type\n"
                "afVMCI = VMCISock_GetAFValue()\n"
                "_original_socket = vsock_socket_type(eventlet.patcher.original('socket').socket)\n"
                "s = vsock_socket(afVMCI)\n",
                ("VS001", "VS001")),
        Example("import socket\nclass Sock(socket.socket):\n    pass\n",
                "import socket\nfrom vsock_runtime import vsock_socket_class\n"
                "class Sock(vsock_socket_class(socket.socket)):\n    pass\n", ("VS001",)),
        Example("import _socket\nclass GreenSocket(_socket.socket):\n    __slots__ = ('__weakref__',)\n",
                "import _socket\nfrom vsock_runtime import vsock_socket_class\n"
                "class GreenSocket(vsock_socket_class(_socket.socket)):\n    __slots__ = ('__weakref__',)\n", ("VS001",)),
        Example("import socket\nu = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)\nok = isinstance(u, socket.socket)\n"
                "d = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
                "def f(s: socket.socket) -> None:\n    pass\n"),
        # types are not factories: aiohappyeyeballs' `SocketFactoryType` alias, a cast, a mock's spec (aiohttp's
        # tests), and neither is the class a test patches or reads a method of
        Example("import socket, typing\nfrom unittest import mock\nFactory = typing.Callable[[tuple], socket.socket]\n"
                "Maybe = typing.Optional[socket.socket]\nsock = typing.cast(socket.socket, thing)\n"
                "fake = mock.create_autospec(socket.socket, spec_set=True, instance=True)\n"
                "other = mock.Mock(spec=socket.socket)\nconnect = getattr(socket.socket, 'connect')\n"
                "with mock.patch.object(socket.socket, 'connect'):\n    monkeypatch.setattr(socket.socket, 'bind', fake)\n"
                "@functools.wraps(socket.socket, assigned=(), updated=())\ndef trio_socket(*args):\n    pass\n"),
        Example("import socket\npacked = socket.inet_pton(socket.AF_INET, '10.0.0.1')\nfamily = socket.AF_INET\n"
                "def serve(socket):\n    return socket.socket()\n"),
    )

    def visit_Call(self, node: cst.Call) -> None:
        func = node.func
        qualified = self.qualified(func)
        if qualified in SOCKET_CLASSES:
            self._constructor(node)
        elif isinstance(func, cst.Attribute) and func.attr.value == "socket" and qualified is None:
            family = family_argument(node)  # a raw C call: libc.socket(AF_INET, SOCK_STREAM, 0)
            if family is not None and is_family_choice(self.names, family.value):
                self.report(family.value, f"socket family {source_of(family.value)} -> afVMCI", replacement=af_family())
        elif isinstance(func, cst.Attribute) and func.attr.value == "create_socket":
            self._create_socket(node)

    def _constructor(self, call: cst.Call) -> None:
        family = family_argument(call)
        if family is not None and is_other_family(self.names, family.value):
            return
        if is_datagram(self.names, call) and not self.options.vmci_datagrams:
            return  # datagrams stay on IP (VS012 reports them)
        shown = source_of(call.func)
        args = list(call.args)
        if family is None and any(arg.star for arg in call.args):
            message = (f"{shown}(*...) takes its family from data at run time (ldap3: socket(*address[:3])) -> "
                       "vsock_socket(), which makes IP families vsock")
        elif may_be_datagram(self.names, call) and not self.options.vmci_datagrams:
            message = (f"{shown}() of a type chosen at run time, SOCK_DGRAM or not -> vsock_socket(), which keeps "
                       "datagram sockets on IP and makes stream ones vsock")
        elif family is None and keyword(call, "fileno") is not None:
            message = f"{shown}(fileno=...) adopts a descriptor -> vsock_socket(), which keeps a vsock one vsock"
        elif family is None:
            args.insert(0, cst.Arg(af_family()))
            message = f"{shown}() defaults to AF_INET -> vsock_socket(afVMCI)"
        elif self.names.qualified(family.value) == "socket.AF_INET6":
            message = (f"{shown}() of family {source_of(family.value)} makes an IP socket -> vsock_socket({source_of(family.value)}, "
                       "...): vsock, with addresses read as IPv6 code unpacks them, (host, port, 0, 0)")
        elif is_family_choice(self.names, family.value):
            args[args.index(family)] = family.with_changes(value=af_family())
            message = f"{shown}() of family {source_of(family.value)} makes an IP socket -> vsock_socket(afVMCI, ...)"
        else:
            message = (f"{shown}() of family {source_of(family.value)}, known only at run time -> vsock_socket(), "
                       "which makes IP families vsock and leaves the others as they are")
        self.report(call, message, replacement=call.with_changes(func=runtime_name("vsock_socket"), args=args))

    def _create_socket(self, call: cst.Call) -> None:
        """asyncore.dispatcher.create_socket(family=AF_INET, type=SOCK_STREAM)."""
        family = family_argument(call)
        modules = [m for ms in self.names.bindings.values() for m in ms] + list(self.names.fetch_guesses.values())
        uses_asyncore = any(m.split(".")[0] in ("asyncore", "asynchat") for m in modules)
        if family is None:
            if uses_asyncore and not call.args:
                self.report(call, "create_socket() defaults to AF_INET -> create_socket(afVMCI)",
                            replacement=call.with_changes(args=[cst.Arg(af_family())]))
        elif is_family_choice(self.names, family.value):
            self.report(family.value, f"create_socket({source_of(family.value)}) makes an IP socket -> afVMCI",
                        replacement=af_family())
        elif uses_asyncore and not is_other_family(self.names, family.value) and not isinstance(family.value, cst.Call):
            self.report(family.value, f"create_socket({source_of(family.value)}): a family known only at run time -> "
                                      f"vsock_family({source_of(family.value)})",
                        replacement=call_to(runtime_name("vsock_family"), family.value))

    def reference(self, node: cst.BaseExpression, qualified: str) -> None:
        """`socket.socket` kept as a factory, a class derived from it, `socket.fromfd` anywhere."""
        parent = self.parents(node)
        if qualified in ADOPTERS:
            self.report(node, f"{source_of(node)} adopts a descriptor with the family the program says -> "
                              f"{ADOPTERS[qualified]}, which keeps the one it has", replacement=runtime_name(ADOPTERS[qualified]))
            return
        if isinstance(parent, cst.Call) and parent.func is node:
            return  # a call: visit_Call's
        if isinstance(parent, cst.Arg) and isinstance(self.parents(parent), cst.ClassDef):
            if parent.keyword is None:
                self.report(node, f"a class derived from {source_of(node)} makes sockets with the family its callers "
                                  f"give -> vsock_socket_class({source_of(node)}): IP families and none become vsock",
                            replacement=call_to(runtime_name("vsock_socket_class"), node))
            return
        if isinstance(parent, cst.Arg) and _reads_an_attribute(self.parents(parent), parent):
            return  # getattr(socket.socket, "connect"): a method of the class vsock sockets are too
        if qualified in C_SOCKET_CLASSES:
            return  # the C type kept as a value (socket.py's own `_socket.socket.__init__(...)`): not a socket made here
        if qualified == "socket.socket" and isinstance(parent, (cst.Assign, cst.AnnAssign)):
            # A name bound to the class may be used as one: `_original_socket.makefile(self)`, isinstance.
            self.report(node, f"{source_of(node)} kept as a socket class -> vsock_socket_type({source_of(node)}): "
                              "made with an IP family or none, its sockets are vsock",
                        replacement=call_to(runtime_name("vsock_socket_type"), node))
        elif qualified == "socket.socket":
            self.report(node, f"{source_of(node)} kept as a socket factory -> vsock_socket",
                        replacement=runtime_name("vsock_socket"))


def _reads_an_attribute(call: cst.CSTNode | None, arg: cst.Arg) -> bool:
    return (isinstance(call, cst.Call) and isinstance(call.func, cst.Name) and call.func.value in ("getattr", "hasattr")
            and bool(call.args) and call.args[0] is arg)
