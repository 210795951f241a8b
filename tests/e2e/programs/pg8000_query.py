"""pg8000 (pure-Python PostgreSQL driver) querying a PostgreSQL server."""
import sys

import pg8000.native

connection = pg8000.native.Connection("postgres", host="localhost", port=int(sys.argv[1]), database="postgres",
                                      timeout=60)
connection.run("CREATE TEMPORARY TABLE ported (word text)")
connection.run("INSERT INTO ported VALUES (:w)", w="vsock")
print(connection.run("SELECT word, 6 * 7 FROM ported")[0])
connection.close()
