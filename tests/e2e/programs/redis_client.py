"""redis-py talking to a Redis server on this machine."""
import sys

import redis

client = redis.Redis(host="localhost", port=int(sys.argv[1]), socket_timeout=30)
client.set("vsockport", "ported")
print(client.get("vsockport").decode(), client.incr("counter"), client.incr("counter"))
