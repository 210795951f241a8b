"""VS019: a library a ported program imports from outside the run, which vsockport has not ported, is
reported at the import with the command that ports it; once it is ported, or when it has no socket
code, it is not (vsockport/libraries.py)."""

from __future__ import annotations

import re

LIBRARIES = {
    "netlib/__init__.py": "import socket\n\ndef fetch():\n    return socket.create_connection(('svc', 80))\n",
    "quietlib/__init__.py": "def add(a, b):\n    return a + b\n",
    "wrapper/__init__.py": "import netlib\n\ndef get():\n    return netlib.fetch()\n",  # no socket code of its own
}
APP = "import json\nimport netlib\nimport quietlib\nfrom wrapper import get\n\n'''import netlib in a docstring'''\n"


def _tree(tmp_path):
    site = tmp_path / "site"
    for name, text in LIBRARIES.items():
        (site / name).parent.mkdir(parents=True, exist_ok=True)
        (site / name).write_text(text)
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "main.py").write_text(APP)
    return site


def _reported(done) -> list[tuple[int, str]]:
    return [(int(line), name) for line, name in re.findall(r"main\.py:(\d+):1: VS019 (\w+) is imported from", done.stderr)]


def test_imports_of_unported_libraries_are_reported_until_they_are_ported(cli, tmp_path):
    site = _tree(tmp_path)
    env = {"PYTHONPATH": str(site)}  # where the program's libraries are, as a virtual environment's would be
    done = cli("diff", "app", cwd=tmp_path, env=env)
    assert done.returncode == 1, done.stderr
    assert _reported(done) == [(2, "netlib"), (4, "wrapper")]  # quietlib has no socket code; json is stdlib's
    assert f"Port it too: vsockport rewrite {site / 'netlib'}" in done.stderr
    assert "1 of the files importing it runs would change" in done.stderr and "it imports netlib, which vsockport has not ported" in done.stderr
    assert (site / "netlib" / "__init__.py").read_text() == LIBRARIES["netlib/__init__.py"]  # checked, never written

    assert cli("rewrite", str(site / "netlib"), cwd=tmp_path).returncode == 0
    again = cli("diff", "app", cwd=tmp_path, env=env)
    assert again.returncode == 0 and _reported(again) == [], again.stderr


def test_a_sibling_package_is_found_where_the_importer_would_find_it(cli, tmp_path):
    """Porting one package of a site-packages folder: the unported package beside it is named."""
    site = _tree(tmp_path)
    done = cli("diff", str(site / "wrapper"), cwd=tmp_path)
    assert done.returncode == 1
    assert re.search(r"wrapper/__init__\.py:1:1: VS019 netlib is imported from \S+/site/netlib, outside this run", done.stderr)
    # In the run, it is ported with the rest: nothing to report.
    whole = cli("diff", str(site), cwd=tmp_path)
    assert "VS019" not in whole.stderr


def test_per_file_ignores_silence_it(cli, tmp_path):
    site = _tree(tmp_path)
    (tmp_path / "pyproject.toml").write_text('[tool.vsockport]\nper-file-ignores = {"app/main.py" = ["VS019"]}\n')
    done = cli("diff", "app", cwd=tmp_path, env={"PYTHONPATH": str(site)})
    assert done.returncode == 0 and "VS019" not in done.stderr, done.stderr


def test_an_optional_import_is_a_note_and_a_type_checking_one_nothing(cli, tmp_path):
    site = _tree(tmp_path)
    (tmp_path / "app" / "main.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import netlib\n"
        "try:\n    import wrapper\nexcept ImportError:\n    wrapper = None\n")
    done = cli("diff", "app", cwd=tmp_path, env={"PYTHONPATH": str(site)})
    assert done.returncode == 0, done.stderr  # a note does not count as work left
    assert re.findall(r"main\.py:(\d+):\d+: VS019 an optional import \(tried; used where it is installed\): (\w+) is", done.stderr) \
        == [("5", "wrapper")]
    assert "[note]" in done.stderr and "netlib is imported" not in done.stderr


def test_a_library_needs_only_what_importing_it_runs(tmp_path):
    """A library's CLI or Sphinx extension may import anything: only its import-time modules decide
    whether it needs another library (libraries.import_time_files)."""
    from vsockport import libraries

    package = tmp_path / "lib"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("from . import core\nfrom lib.sub import part\n")
    (package / "core.py").write_text("import json\n")
    (package / "sub" / "__init__.py").write_text("")
    (package / "sub" / "part.py").write_text("def f():\n    from . import lazy\n")
    (package / "cli.py").write_text("import netlib\n")
    assert {p.relative_to(package).as_posix() for p in libraries.import_time_files(package)} == \
        {"__init__.py", "core.py", "sub/__init__.py", "sub/part.py"}


def test_a_library_is_judged_by_the_modules_its_import_runs(cli, tmp_path):
    """pytest's pastebin plugin uses sockets; `import pytest` never runs it. A module that an import
    names (`from tool import pastebin`) is run, and judged."""
    site = tmp_path / "site"
    (site / "tool").mkdir(parents=True)
    (site / "tool" / "__init__.py").write_text("def main():\n    return 0\n")
    (site / "tool" / "pastebin.py").write_text("import socket\n\ndef send():\n    return socket.create_connection(('paste', 80))\n")
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "main.py").write_text("import tool\n")
    (tmp_path / "app" / "share.py").write_text("from tool import pastebin\n")
    done = cli("diff", "app", cwd=tmp_path, env={"PYTHONPATH": str(site)})
    assert re.findall(r"(\w+)\.py:\d+:1: VS019 tool is imported", done.stderr) == ["share"], done.stderr


def test_a_library_ported_in_the_same_run_is_the_one_imported(cli, tmp_path):
    """A `src/` layout and a dependency folder ported with the program (urllib3's tests import `urllib3`
    from src/ and `trio` from the site folder beside it): the run's own copies answer the import, not
    the unported ones an interpreter's site-packages holds."""
    site = _tree(tmp_path)  # the unported copies, on PYTHONPATH as an interpreter's site-packages
    project = tmp_path / "project"
    (project / "src" / "netlib").mkdir(parents=True)
    (project / "src" / "netlib" / "__init__.py").write_text(LIBRARIES["netlib/__init__.py"])
    (project / "deps" / "wrapper").mkdir(parents=True)
    (project / "deps" / "wrapper" / "__init__.py").write_text(LIBRARIES["wrapper/__init__.py"])
    (project / "deps" / "single.py").write_text(LIBRARIES["netlib/__init__.py"])
    (project / "tests").mkdir()
    (project / "tests" / "test_it.py").write_text("import netlib\nimport wrapper\nimport single\n")
    done = cli("diff", "project", cwd=tmp_path, env={"PYTHONPATH": str(site)})
    assert "VS019" not in done.stderr, done.stderr
    # The same test module ported alone still names the unported copies it would import.
    alone = cli("diff", "project/tests", cwd=tmp_path, env={"PYTHONPATH": str(site)})
    assert re.findall(r"test_it\.py:(\d+):1: VS019 (\w+) is imported from", alone.stderr) == [("1", "netlib"), ("2", "wrapper")]
