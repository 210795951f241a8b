"""Fetch a file from an HTTP server on this machine with http.client and with urllib."""
import http.client
import sys
import urllib.request

port = int(sys.argv[1])
conn = http.client.HTTPConnection("localhost", port, timeout=30)
conn.request("GET", "/" + sys.argv[2])
response = conn.getresponse()
print(response.status, response.read().decode().strip())
with urllib.request.urlopen(f"http://localhost:{port}/{sys.argv[2]}", timeout=30) as reply:
    print(reply.status, reply.read().decode().strip())
