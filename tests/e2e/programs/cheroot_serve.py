"""cheroot's WSGI server (CherryPy's), which checks the address it is bound to."""
import sys

from cheroot import wsgi


def app(environ, start_response):
    body = ("cheroot served %s\n" % environ["REMOTE_ADDR"]).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


server = wsgi.Server(("0.0.0.0", int(sys.argv[1])), app)
print("cheroot ready", flush=True)
server.start()
