"""ldap3 reading an OpenLDAP server's root DSE and an entry it serves."""
import sys

from ldap3 import BASE, Connection, Server

server = Server("localhost", port=int(sys.argv[1]), connect_timeout=30)
with Connection(server, "cn=admin,dc=vsockport,dc=test", "secret", auto_bind=True, receive_timeout=60) as conn:
    conn.search("dc=vsockport,dc=test", "(objectClass=*)", search_scope=BASE, attributes=["dc", "o"])
    entry = conn.entries[0]
    print(entry.dc.value, entry.o.value)
