"""Tornado: an HTTPServer (bind_sockets: getaddrinfo, socket, bind loops) and its AsyncHTTPClient
(a happy-eyeballs TCPClient over the loop's getaddrinfo) in one process; then it serves curl."""
import asyncio
import sys

import tornado.httpclient
import tornado.web


class Hello(tornado.web.RequestHandler):
    def get(self):
        self.write(f"hello from tornado, client {self.request.remote_ip}\n")


async def main(port):
    app = tornado.web.Application([(r"/", Hello)])
    app.listen(port, address="127.0.0.1")
    response = await tornado.httpclient.AsyncHTTPClient().fetch(f"http://localhost:{port}/", request_timeout=60)
    print(response.code, response.body.decode().strip(), flush=True)
    print("tornado serving", flush=True)
    await asyncio.sleep(600)


asyncio.run(main(int(sys.argv[1])))
