"""requests (over urllib3) fetching from an HTTP server on this machine, on one kept-alive connection."""
import sys

import requests

port = int(sys.argv[1])
with requests.Session() as session:
    for attempt in range(2):
        response = session.get(f"http://localhost:{port}/served.txt", timeout=60)
        print(response.status_code, response.text.strip())
