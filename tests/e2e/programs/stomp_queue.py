"""stomp.py against RabbitMQ's STOMP plugin: subscribe to a queue, send to it, receive the message."""
import sys
import threading

import stomp

received = threading.Event()
bodies = []


class Listener(stomp.ConnectionListener):
    def on_message(self, frame):
        bodies.append(frame.body)
        received.set()


connection = stomp.Connection([("localhost", int(sys.argv[1]))], timeout=120)
connection.set_listener("", Listener())
connection.connect("guest", "guest", wait=True)
connection.subscribe("/queue/vsockport-e2e-stomp", id=1, ack="auto")
connection.send("/queue/vsockport-e2e-stomp", "stomp over vsock")
received.wait(120)
connection.disconnect()
print(bodies[0] if bodies else "nothing received")
