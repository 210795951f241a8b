"""gevent's WSGI server (a StreamServer) answering curl."""
import sys

from gevent.pywsgi import WSGIServer


def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [f"hello from gevent, client {environ['REMOTE_ADDR']}\n".encode()]


print("gevent serving", flush=True)
WSGIServer(("localhost", int(sys.argv[1])), app, log=None).serve_forever()
