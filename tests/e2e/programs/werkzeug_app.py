"""werkzeug's development server (Flask's `run`) serving a WSGI app (to curl, over a socat bridge)."""
import sys

from werkzeug.serving import run_simple
from werkzeug.wrappers import Request, Response


@Request.application
def app(request):
    return Response(f"hello from werkzeug, client {request.remote_addr}\n")


print("werkzeug serving", flush=True)
run_simple("localhost", int(sys.argv[1]), app)
