"""A Sanic application, run as its docs show (single process)."""
import sys

from sanic import Sanic
from sanic.response import text

app = Sanic("vsockport_e2e")


@app.get("/")
async def hello(request):
    return text(f"hello from sanic, client {request.ip}\n")


if __name__ == "__main__":
    app.run(host="localhost", port=int(sys.argv[1]), single_process=True, access_log=False, motd=False)
