"""Preambles for `python -c` programs that must run without root's file privileges.

Dropping to an unprivileged uid is the obvious way, but then the interpreter itself may be unreadable
(pyenv and venvs under /root, mode 700), and its first lazy import fails. These preambles use Linux
capabilities instead (capget/capset through ctypes, no tool needed):

- WITHOUT_FILE_PRIVILEGES: stay uid 0 but lose every capability that lets root ignore file modes and
  owners (CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER, CAP_FSETID): mode 000 is
  unreadable, another user's file cannot be given away.
- AS_NOBODY: become uid/gid 65534 keeping only CAP_DAC_READ_SEARCH (read any file, enter any folder),
  so the interpreter stays importable while every write and chown is a real unprivileged one's.

Run as a non-root user, both do nothing: the process already is unprivileged.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

_CAPABILITIES = """
import ctypes, os
def _set_capabilities(keep):
    libc = ctypes.CDLL(None, use_errno=True)
    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]
    class Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]
    header, data = Header(0x20080522, 0), (Data * 2)()  # _LINUX_CAPABILITY_VERSION_3: two 32-bit words
    if libc.capget(ctypes.byref(header), data) != 0:
        raise OSError(ctypes.get_errno(), "capget")
    for word, bits in enumerate(keep):
        data[word].permitted &= bits
        data[word].effective = data[word].permitted
        data[word].inheritable &= bits
    if libc.capset(ctypes.byref(header), data) != 0:
        raise OSError(ctypes.get_errno(), "capset")
"""

# Capability numbers: CAP_CHOWN 0, CAP_DAC_OVERRIDE 1, CAP_DAC_READ_SEARCH 2, CAP_FOWNER 3, CAP_FSETID 4.
WITHOUT_FILE_PRIVILEGES = _CAPABILITIES + """
if os.geteuid() == 0:
    _set_capabilities((0xFFFFFFFF & ~0b11111, 0xFFFFFFFF))
"""

AS_NOBODY = _CAPABILITIES + """
if os.geteuid() == 0:
    ctypes.CDLL(None).prctl(8, 1, 0, 0, 0)  # PR_SET_KEEPCAPS: keep the permitted set across setuid
    os.setgroups([]); os.setgid(65534); os.setuid(65534)
    _set_capabilities((1 << 2, 0))
    assert os.geteuid() == 65534
"""


def rewrite_as(preamble: str, target: Path, cwd: Path, cache: Path) -> subprocess.CompletedProcess:
    """`vsockport rewrite -j 1 --no-cache TARGET` in a process that runs `preamble` first."""
    program = preamble + (
        "import sys\nfrom vsockport import cli\n"
        f"sys.exit(cli.main(['rewrite', '-j', '1', '--no-cache', {str(target)!r}]))\n"
    )
    return subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=300, cwd=cwd,
                          env={**os.environ, "VSOCKPORT_CACHE_DIR": str(cache)})
