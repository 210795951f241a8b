"""prometheus_client's own HTTP server, serving metrics to a scraper (curl, over a socat bridge)."""
import sys
import time

from prometheus_client import Counter, start_http_server

hits = Counter("vsockport_hits", "Requests served over vsock")
hits.inc(3)
start_http_server(int(sys.argv[1]), addr="0.0.0.0")
print("metrics served", flush=True)
time.sleep(600)
