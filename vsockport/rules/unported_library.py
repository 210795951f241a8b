from __future__ import annotations

from vsockport import libraries
from vsockport.rules.api import Example, Rule


class UnportedLibrary(Rule):
    """Report imports of libraries outside the run that vsockport has not ported.

    ## What it does
    After a run's files are ported, each `import X` and `from X import ...` of a module that is not the
    standard library's and not in the run is looked up where the program would find it: a folder beside
    the importing file or above it (a sibling package in the same site-packages), then the run's own
    import roots (a `src/` layout's package, a dependency folder ported with the program: the copy the
    program imports once those folders are on its path), then vsockport's own `sys.path` (PYTHONPATH,
    or the environment vsockport is installed in). A library found there is
    ported in memory (never written; the result cache keeps later runs fast): when a file that the
    import runs would change (the package's `__init__`, the submodules the import names, and what they
    import at module level), or imports such a library itself (boto3 through botocore), the import is
    reported with the library's folder and the command that ports it. A library vsockport ported (its
    import root holds the runtime), or one with no socket code, is not reported; neither is a module
    found nowhere.
    An import tried in a `try` that handles its absence is a note (is it installed where the program
    runs?), one under `if TYPE_CHECKING:` nothing; what a library needs is what importing it runs (its
    CLI, its Sphinx extension or pytest's pastebin plugin may use sockets that a program importing it
    never runs).

    ## Why
    `vsockport rewrite app/` ports app/, but `requests.get(...)` in it runs requests' own code, which
    connects over TCP/IP until requests (and urllib3 under it) are ported too. Without this finding the
    run would say nothing is left while the program still speaks TCP/IP.

    ## Example
    ```
    app.py:1:1: VS019 requests is imported from /venv/lib/python3.11/site-packages/requests, outside this
    run, and vsockport has not ported it (it imports urllib3, which vsockport has not ported): its
    connections stay on TCP/IP. Port it too: vsockport rewrite /venv/lib/python3.11/site-packages/requests
    ```

    ## Fix safety
    Report only: run the command it prints (then the library's own imports are checked the same way),
    or silence an import you keep on TCP/IP on purpose with `per-file-ignores`.
    """

    code = libraries.CODE
    name = libraries.NAME
    fix_safety = "none"
    triggers = ()  # never run on a module's syntax: the engine checks a run's imports itself (vsockport/libraries.py)
    examples = (Example("import requests\nfrom redis import Redis\n"),)
