"""The injected runtime: `vsock.py` is copied into ported trees; `inject` decides where and when."""
