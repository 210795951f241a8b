"""An XML-RPC server with two functions."""
import sys
from xmlrpc.server import SimpleXMLRPCServer

with SimpleXMLRPCServer(("localhost", int(sys.argv[1])), logRequests=False) as server:
    server.register_function(pow)
    server.register_function(lambda text: text[::-1], "reverse")
    print("xmlrpc ready", flush=True)
    server.serve_forever()
