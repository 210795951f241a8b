"""vsockport: port Python socket programs from TCP/IP to vSockets."""

__version__ = "0.1.0"
