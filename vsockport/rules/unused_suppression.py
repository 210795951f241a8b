from __future__ import annotations

from vsockport.rules.api import Example, Rule


class UnusedSuppression(Rule):
    """Report `# vsockport: ignore` comments that suppress nothing.

    ## What it does
    Reports a suppression comment that held back no finding on its line: `# vsockport: ignore[VS008]`
    where VS008 found nothing, or a blanket `# vsockport: ignore` on a line without findings. Codes of
    rules that did not run (deselected with `--select`/`--ignore`) are not judged, and a blanket
    suppression is judged only when every rule ran. A code no rule has (`VS999`, a typo) is reported
    whatever ran: it can never suppress anything.

    ## Why
    A stale suppression hides the next real finding on its line: code that is changed later can start
    using TCP/IP there without anyone being told. This is ruff's RUF100 for vsockport.

    ## Example
    ```python
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # vsockport: ignore[VS008]
    ```
    is reported: `SO_REUSEADDR` exists on vsock, so VS008 has nothing to hold back.

    ## Fix safety
    No fix: remove the comment, or the codes in it that no longer apply.
    """

    code = "VS100"
    name = "unused-suppression"
    fix_safety = "none"
    triggers = (b"vsockport:",)
    # The pipeline judges suppressions once every rule has run; this class documents and names it.
    examples = (
        Example("import socket\nx = 1  # vsockport: ignore[VS100]\n", None, ("VS100",)),
        Example("import socket\ns = socket.socket()  # vsockport: ignore[VS01]\n", None, ("VS100",)),
        Example("import socket\nx = 1  # a plain comment\n"),
    )
