"""Where reported nodes are in a region's text, and how a replacement prints in their place.

libcst prints a tree through code generation; recording the position of each wanted node while it
prints is the cheapest way to know its span (its `PositionProvider` metadata costs a copy of the tree
and a second walk: several times more). That recording hooks libcst's `CodegenState`, which is not
part of its public API: this module is the one place that does, so a libcst release that changes it
breaks here, and the tests say so.
"""

from __future__ import annotations

import difflib
from typing import Mapping

import libcst as cst
from libcst._nodes.internal import CodegenState

from vsockport.rules.api import RuntimeName
from vsockport.source import LineIndex


class _SpanRecorder(CodegenState):
    """Code generation that notes where the wanted nodes' code starts and ends (in characters) and the
    indentation in force there (a multi-line expression prints its inner lines with it)."""

    def __init__(self, module: cst.Module, wanted: set) -> None:
        super().__init__(default_indent=module.default_indent, default_newline=module.default_newline)
        self.wanted = wanted
        self.spans: dict = {}
        self.indents: dict = {}
        self._starts: list[int] = []
        self.position = 0

    def add_token(self, value: str) -> None:
        self.tokens.append(value)
        self.position += len(value)

    def add_indent_tokens(self) -> None:
        self.tokens.extend(self.indent_tokens)
        self.position += sum(len(t) for t in self.indent_tokens)

    def before_codegen(self, node: cst.CSTNode) -> None:
        self._starts.append(self.position)
        if node in self.wanted:
            self.indents[node] = list(self.indent_tokens)

    def after_codegen(self, node: cst.CSTNode) -> None:
        start = self._starts.pop()
        if node in self.wanted:
            self.spans[node] = (start, self.position)


class Spans:
    """Where each wanted node is in the region's text, how libcst prints it there, and how a
    replacement prints in the same place (runtime names under the name the module binds them as)."""

    def __init__(self, module: cst.Module, wanted: set, text: str, aliases: Mapping[str, str] = {}) -> None:
        recorder = _SpanRecorder(module, wanted)
        module._codegen(recorder)
        self._module, self._recorder, self._aliases = module, recorder, aliases
        self._printed = "".join(recorder.tokens)
        # libcst may print something else somewhere (it drops the space in `except E :`): spans move
        # from its text to the real one, and an edit of what it would reformat is refused.
        self._to_text = None if self._printed == text else _OffsetMap(self._printed, text)

    def __getitem__(self, node: cst.CSTNode) -> tuple[int, int]:
        start, end = self._recorder.spans[node]
        if self._to_text is not None:
            return self._to_text(start), self._to_text(end)
        return start, end

    def printed(self, node: cst.CSTNode) -> str:
        start, end = self._recorder.spans[node]
        return self._printed[start:end]

    def code(self, replacement: cst.CSTNode, instead_of: cst.CSTNode) -> str:
        if self._aliases:
            replacement = replacement.visit(_Aliased(self._aliases))
        state = CodegenState(default_indent=self._module.default_indent, default_newline=self._module.default_newline)
        state.indent_tokens = list(self._recorder.indents[instead_of])
        replacement._codegen(state)
        return "".join(state.tokens)


class _Aliased(cst.CSTTransformer):
    """Runtime names as the module imports them (`vsock_socket_vsock` where it binds `vsock_socket` itself)."""

    def __init__(self, aliases: Mapping[str, str]) -> None:
        super().__init__()
        self.aliases = aliases

    # libcst dispatches on the class's own name: a RuntimeName comes to leave_RuntimeName, not leave_Name.
    def leave_RuntimeName(self, original: RuntimeName, updated: RuntimeName) -> cst.Name:
        if original.value in self.aliases:
            return RuntimeName(self.aliases[original.value])
        return updated


class _OffsetMap:
    """Offsets of one text in another that differs from it inside a few lines (same line count):
    outside the differing stretches offsets move with their line; where they cannot, they map to -1."""

    def __init__(self, printed: str, text: str) -> None:
        self._printed = LineIndex(printed)
        self._text = LineIndex(text)
        printed_lines, text_lines = printed.splitlines(True), text.splitlines(True)
        self._same = len(printed_lines) == len(text_lines)
        self._lines = {i + 1: (a, b) for i, (a, b) in enumerate(zip(printed_lines, text_lines)) if a != b} if self._same else {}

    def __call__(self, offset: int) -> int:
        if not self._same:
            return -1
        line, column = self._printed.position(offset)
        if line in self._lines:
            printed_line, text_line = self._lines[line]
            matcher = difflib.SequenceMatcher(None, printed_line, text_line, autojunk=False)
            for a, b, size in matcher.get_matching_blocks():
                if size and a <= column - 1 <= a + size:
                    column = b + (column - 1 - a) + 1
                    break
            else:
                return -1
        return self._text.offset(line, column)
