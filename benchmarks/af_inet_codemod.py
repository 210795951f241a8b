"""The hand-written route vsockport is measured against: one rule (AF_INET -> afVMCI) as a LibCST codemod,

    python -m libcst.tool codemod -x --no-format benchmarks.af_inet_codemod.AfInetToVsock TREE
"""

from __future__ import annotations

import libcst as cst
import libcst.matchers as m
from libcst.codemod import VisitorBasedCodemodCommand
from libcst.codemod.visitors import AddImportsVisitor


class AfInetToVsock(VisitorBasedCodemodCommand):
    DESCRIPTION = "socket.AF_INET / AF_INET6 -> afVMCI from the vsock runtime"

    @m.leave(m.Attribute(value=m.Name("socket"), attr=m.Name("AF_INET") | m.Name("AF_INET6")))
    def port_family(self, original: cst.Attribute, updated: cst.Attribute) -> cst.BaseExpression:
        AddImportsVisitor.add_needed_import(self.context, "vsock_runtime", "afVMCI")
        return cst.Name("afVMCI")
