"""imapclient against Dovecot: log in, append a message, find it by subject and read its envelope."""
import sys

from imapclient import IMAPClient

with IMAPClient("localhost", port=int(sys.argv[1]), ssl=False, timeout=120) as client:
    client.login("vsock", "secret")
    client.append("INBOX", b"From: guest@vsockport.test\r\nSubject: mail over vsock\r\n\r\nhello\r\n")
    client.select_folder("INBOX")
    found = client.search(["SUBJECT", "over vsock"])
    envelope = client.fetch(found, ["ENVELOPE"])[found[0]][b"ENVELOPE"]
    print(len(found), envelope.subject.decode())
