"""mysql-connector-python in its pure-Python mode against MariaDB: create a table, insert, select."""
import sys

import mysql.connector

conn = mysql.connector.connect(host="localhost", port=int(sys.argv[1]), user="root", use_pure=True,
                               connection_timeout=120)
cursor = conn.cursor()
cursor.execute("CREATE DATABASE IF NOT EXISTS e2e")
cursor.execute("CREATE TABLE e2e.greetings (word VARCHAR(20), n INT)")
cursor.execute("INSERT INTO e2e.greetings VALUES (%s, %s)", ("vsock", 42))
cursor.execute("SELECT word, n FROM e2e.greetings")
print(cursor.fetchall(), type(conn).__name__)
conn.close()
