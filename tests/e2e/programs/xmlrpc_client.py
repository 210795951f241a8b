"""Call the XML-RPC server."""
import sys
import xmlrpc.client

proxy = xmlrpc.client.ServerProxy(f"http://localhost:{sys.argv[1]}/")
print(proxy.pow(2, 10), proxy.reverse("vsock"))
