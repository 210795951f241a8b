"""An FTP server (pyftpdlib) and the standard library's FTP client, as a guest moves files to and from
its host: a file stored and fetched back in passive mode (ftplib's default: PASV), in active mode (PORT)
and, dialled as an IPv6 address, in extended passive mode (EPSV); the folder listed and a transfer
aborted (ABOR)."""
import ftplib
import io
import sys
import tempfile
import threading

from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import FTPHandler
from pyftpdlib.servers import FTPServer

port = int(sys.argv[1])
authorizer = DummyAuthorizer()
authorizer.add_user("guest", "secret", tempfile.mkdtemp(), perm="elradfmw")
FTPHandler.authorizer = authorizer
server = FTPServer(("localhost", port), FTPHandler)
threading.Thread(target=server.serve_forever, kwargs={"timeout": 0.1}, daemon=True).start()

fetched = []
for host, passive, name in (("localhost", True, "pasv"), ("localhost", False, "port"), ("::1", True, "epsv")):
    ftp = ftplib.FTP()
    ftp.connect(host, port, timeout=30)
    ftp.login("guest", "secret")
    ftp.set_pasv(passive)
    ftp.storbinary("STOR " + name, io.BytesIO(b"stored-by-" + name.encode()))
    copy = io.BytesIO()
    ftp.retrbinary("RETR " + name, copy.write)
    fetched.append(copy.getvalue().decode())
    listing = sorted(ftp.nlst())
    aborted = ftp.abort()[:3]
    ftp.quit()
print(*fetched, *listing, aborted, server.socket.family.name)
server.close_all()
