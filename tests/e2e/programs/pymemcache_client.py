"""pymemcache (which takes the socket module as a parameter) talking to memcached."""
import sys

from pymemcache.client.base import Client

client = Client(("localhost", int(sys.argv[1])), connect_timeout=30, timeout=30)
client.set("vsockport", "ported")
print(client.get("vsockport").decode(), client.incr("n", 1), client.add("n", "0"))
