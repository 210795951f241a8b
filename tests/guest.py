"""Where the tests are running: on a normal machine, or inside `vsockport sandbox`."""

from __future__ import annotations


def in_sandbox_guest() -> bool:
    """The sandbox guest (and only it) has the vsock loopback transport loaded."""
    try:
        with open("/proc/modules") as modules:
            return any(line.startswith("vsock_loopback ") for line in modules)
    except OSError:
        return False
