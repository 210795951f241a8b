"""Runs over files that need nothing (pre-commit, editors) do not import libcst or the rules: the
shipped rule catalog and the prefilter or the result cache answer. Speed itself is measured by
benchmarks/single_file.py, not here."""

from __future__ import annotations

import json
import subprocess
import sys


from vsockport import catalog
from vsockport.rules import built

PORTED = "import socket\nfrom vsock_runtime import vsock_socket\ns = vsock_socket()\n"
PLAIN = "def add(a, b):\n    return a + b\n"
TCP = "import socket\ns = socket.socket()\n"

# Runs the real command line in-process, then reports which heavy modules it imported.
_PROBE = """
import json, sys
from vsockport.cli import main
sys.argv = ["vsockport", *sys.argv[1:]]
try:
    main()
except SystemExit as exc:
    code = exc.code
print(json.dumps({"exit": code, "imported": sorted(m for m in ("libcst", "rich", "vsockport.pipeline",
      "vsockport.rules.api") if m in sys.modules)}), file=sys.stderr)
"""


def _probe(tmp_path, cache, *args) -> dict:
    done = subprocess.run([sys.executable, "-c", _PROBE, *args], cwd=tmp_path, capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "VSOCKPORT_CACHE_DIR": str(cache), "HOME": str(tmp_path)},
                          timeout=120)
    return json.loads(done.stderr.strip().splitlines()[-1])


def test_the_shipped_catalog_matches_the_rules():
    # Fails when a rule's code, name or triggers changed without `python -m vsockport.rules`.
    with open(catalog.CATALOG_PATH, encoding="utf-8") as handle:
        assert handle.read() == catalog.encode(built()), "stale rules/catalog.json: run python -m vsockport.rules"
    assert catalog.shipped() == built()


def test_a_file_without_socket_code_imports_neither_libcst_nor_rich_even_cold(tmp_path):
    (tmp_path / "m.py").write_text(PLAIN)
    cache = tmp_path / "cache"
    for run in ("cold", "warm"):
        assert _probe(tmp_path, cache, "diff", "m.py") == {"exit": 0, "imported": []}, run


def test_an_unchanged_file_is_answered_by_the_cache_without_libcst(tmp_path):
    (tmp_path / "m.py").write_text(TCP)
    cache = tmp_path / "cache"
    first = _probe(tmp_path, cache, "diff", "m.py")
    assert first["exit"] == 1 and "libcst" in first["imported"]  # the probe sees libcst when it is used
    assert _probe(tmp_path, cache, "diff", "m.py") == {"exit": 1, "imported": []}
    assert _probe(tmp_path, cache, "rewrite", "m.py")["exit"] == 0
    assert "vsock_socket(afVMCI)" in (tmp_path / "m.py").read_text()
    # The ported file (new bytes: parsed once), then as every later pre-commit run sees it.
    assert _probe(tmp_path, cache, "diff", "m.py", "vsock_runtime.py")["exit"] == 0
    assert _probe(tmp_path, cache, "diff", "m.py", "vsock_runtime.py") == {"exit": 0, "imported": []}


def test_a_content_cache_hit_does_not_import_libcst(tmp_path):
    # The stat index misses (the file was touched) but its bytes are known: no parse.
    (tmp_path / "m.py").write_text(TCP)
    cache = tmp_path / "cache"
    assert "libcst" in _probe(tmp_path, cache, "diff", "m.py")["imported"]
    (tmp_path / "m.py").write_text(TCP)  # same bytes, new mtime and ctime
    assert _probe(tmp_path, cache, "diff", "m.py") == {"exit": 1, "imported": []}
