"""aiosmtpd's Controller (an asyncio SMTP server in a thread) receiving a message from smtplib."""
import smtplib
import sys

from aiosmtpd.controller import Controller


class Keep:
    async def handle_DATA(self, server, session, envelope):
        print("received for", envelope.rcpt_tos[0], "-", envelope.content.decode().splitlines()[-1], flush=True)
        return "250 OK"


port = int(sys.argv[1])
controller = Controller(Keep(), hostname="127.0.0.1", port=port, ready_timeout=60)
controller.start()
with smtplib.SMTP("127.0.0.1", port, timeout=60) as client:
    client.sendmail("vm@vsockport.test", ["host@vsockport.test"], "Subject: hi\r\n\r\nmail over vsock")
controller.stop()
print("sent", flush=True)
