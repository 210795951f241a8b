"""pika's BlockingConnection against RabbitMQ: declare a queue, publish to it, get the message back."""
import sys
import time

import pika

params = pika.ConnectionParameters(host="localhost", port=int(sys.argv[1]), socket_timeout=120,
                                   blocked_connection_timeout=120)
with pika.BlockingConnection(params) as connection:
    channel = connection.channel()
    channel.queue_declare("vsockport-e2e")
    channel.basic_publish("", "vsockport-e2e", b"amqp over vsock")
    body = None
    for _ in range(600):
        _, _, body = channel.basic_get("vsockport-e2e", auto_ack=True)
        if body:
            break
        time.sleep(0.1)
    print(body.decode())
