"""A mail sink built on smtpd's asyncore server (Python 3.11 and older), sent to by smtplib: the message
arrives, over vsock."""
import asyncore
import smtpd
import smtplib
import sys
import threading

port = int(sys.argv[1])
received = []


class Sink(smtpd.SMTPServer):
    def process_message(self, peer, mailfrom, rcpttos, data, **kwargs):
        received.append((mailfrom, rcpttos, data.decode().strip()))


sink = Sink(("localhost", port), None, decode_data=False)
threading.Thread(target=asyncore.loop, kwargs={"timeout": 0.1}, daemon=True).start()
with smtplib.SMTP("localhost", port, timeout=30) as client:
    client.sendmail("guest@vm", ["host@vm"], "Subject: hi\r\n\r\nover vsock")
mailfrom, rcpttos, data = received[0]
print(mailfrom, *rcpttos, data.splitlines()[-1], sink.socket.family.name)
