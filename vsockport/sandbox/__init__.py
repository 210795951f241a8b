"""`vsockport sandbox`: a throw-away Linux guest with a real kernel vsock loopback transport (CID 1)."""

from vsockport.sandbox.setup import SetupError, prepare
from vsockport.sandbox.vm import EXIT_SANDBOX_FAILURE, EXIT_TIMEOUT, run

__all__ = ["EXIT_SANDBOX_FAILURE", "EXIT_TIMEOUT", "SetupError", "prepare", "run"]
