"""kazoo's KazooClient against ZooKeeper: create an ephemeral node with data, read it back."""
import sys

from kazoo.client import KazooClient

client = KazooClient(hosts=f"localhost:{sys.argv[1]}", timeout=60)
client.start(timeout=300)
client.ensure_path("/vsockport")
client.create("/vsockport/e2e", b"zookeeper over vsock", ephemeral=True)
data, _ = client.get("/vsockport/e2e")
print(data.decode())
client.stop()
