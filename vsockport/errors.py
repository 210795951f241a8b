"""Why a module could not be ported, with the place it points at."""

from __future__ import annotations


class PortError(Exception):
    """A module that cannot be ported; `line`/`column` say where (0: nowhere in particular)."""

    kind = "cannot port"

    def __init__(self, line: int, column: int, message: str) -> None:
        super().__init__(message)
        self.line, self.column, self.message = line, column, message


class ParseFailure(PortError):
    kind = "cannot parse"


class Unfaithful(PortError):
    """libcst does not give back this module's own text (it drops, for one, the space in `except E :`);
    porting it would change more than the rules did."""

    kind = "cannot port faithfully"

    def __init__(self, line: int) -> None:
        super().__init__(line, 1, f"libcst, the parser vsockport uses, would also reformat line {line}; "
                                  "left untouched (port it by hand, or exclude it)")


class InternalError(PortError):
    """A vsockport bug that was caught before it could touch the file."""

    kind = "internal error"
