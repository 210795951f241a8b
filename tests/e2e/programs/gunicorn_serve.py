"""gunicorn (two sync workers) serving a WSGI app that says who served whom."""
import sys


def app(environ, start_response):
    body = ("gunicorn served %s\n" % environ["REMOTE_ADDR"]).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


if __name__ == "__main__":
    from gunicorn.app.wsgiapp import run

    sys.argv = ["gunicorn", "--workers", "2", "--bind", "0.0.0.0:%s" % sys.argv[1], "gunicorn_serve:app"]
    run()
