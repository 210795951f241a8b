"""The diff `vsockport diff` prints: what `git apply` takes, for any edit, in time that grows with the
file (difflib's matcher alone took 25 s on a 4,000-function module's port)."""

from __future__ import annotations

import difflib
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest

from vsockport.linediff import unified_hunks
from vsockport.report import unified_diff
from vsockport.results import FileResult

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from big_file import module  # noqa: E402  (the benchmark's generated modules)


def _edited(rng: random.Random, lines: list[str]) -> list[str]:
    edited = list(lines)
    for _ in range(rng.randint(0, 25)):
        where, what = rng.randint(0, len(edited)), rng.random()
        if what < 0.4:
            edited.insert(where, f"added {rng.randint(0, 50)}\n")
        elif what < 0.7 and edited:
            del edited[min(where, len(edited) - 1)]
        elif edited:
            edited[min(where, len(edited) - 1)] = f"changed {rng.randint(0, 50)}\n"
    return edited


@pytest.mark.parametrize("seed", range(8))
def test_git_applies_the_diff_of_any_edit(tmp_path, seed):
    """Repeated lines (blank lines, `pass`) and unique ones mixed, as in code; many edits per file."""
    rng = random.Random(seed)
    common = ["\n", "    pass\n", "    return None\n", "else:\n"] + [f"line {i}\n" for i in range(20)]
    for case in range(25):
        old = [rng.choice(common) if rng.random() < 0.4 else f"unique {rng.randint(0, 10**9)}\n"
               for _ in range(rng.randint(0, 400))]
        new = _edited(rng, old)
        target = tmp_path / f"f{case}.txt"
        target.write_text("".join(old))
        patch = tmp_path / f"f{case}.diff"
        patch.write_text(f"--- a/{target.name}\n+++ b/{target.name}\n" + "".join(unified_hunks(old, new)))
        if old == new:
            assert patch.read_text().count("\n") == 2  # no hunk at all
            continue
        done = subprocess.run(["git", "apply", "--unidiff-zero", patch.name], cwd=tmp_path, capture_output=True,
                              text=True)
        assert done.returncode == 0, done.stderr
        assert target.read_text() == "".join(new)


def test_small_diffs_are_difflibs_own():
    old = ["import socket\n", "\n", "s = socket.socket()\n", "s.bind(('', 0))\n", "print(s)\n"]
    new = ["import socket\n", "from vsock_runtime import vsock_socket\n", "\n", "s = vsock_socket()\n",
           "s.bind(('', 0))\n", "print(s)\n"]
    assert list(unified_hunks(old, new)) == list(difflib.unified_diff(old, new))[2:]


def test_the_diff_of_a_big_port_costs_what_its_lines_cost():
    """Not a timing assertion on a noisy machine: the ratio of two sizes measured side by side, with
    a margin far from what a quadratic matcher gives (16x for 4x the lines)."""
    costs = {}
    for functions in (1000, 4000):
        data = module(functions)  # ported as vsockport does, without the cost of porting it here
        ported = data.replace(b"import socket\n", b"import socket\nfrom vsock_runtime import vsock_socket\n", 1)
        ported = ported.replace(b"socket.socket(socket.AF_INET", b"vsock_socket(afVMCI")
        result = FileResult(Path("big.py"), old=data, new=ported, encoding="utf-8")
        start = time.process_time()
        text = unified_diff(result)
        costs[functions] = time.process_time() - start
        assert text.count("\n+") >= functions * 2 // 3  # every socket() the port changed is in it
    assert costs[4000] < 8 * costs[1000] + 0.05, costs
