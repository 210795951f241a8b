"""paho-mqtt publishing one retained message (QoS 1) to a broker on this machine."""
import sys

import paho.mqtt.client as mqtt

client = mqtt.Client(client_id="vsockport-e2e")
client.connect("localhost", int(sys.argv[1]), keepalive=30)
client.loop_start()
info = client.publish("vsockport/e2e", sys.argv[2], qos=1, retain=True)
info.wait_for_publish(timeout=30)
print("published", info.is_published())
client.loop_stop()
client.disconnect()
