"""An asyncio client that tunes its connection the TCP way: TCP_NODELAY and SO_KEEPALIVE on the
socket its transport hands out (asyncio's TransportSocket), then an exchange with an asyncio server."""
import asyncio
import socket
import sys


async def handle(reader, writer):
    writer.write((await reader.readline()).upper())
    await writer.drain()
    writer.close()


async def main(port):
    server = await asyncio.start_server(handle, "127.0.0.1", port)
    reader, writer = await asyncio.open_connection("localhost", port)
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    print(type(sock).__name__, sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE))
    writer.write(b"tuned over vsock\n")
    print((await reader.readline()).decode().strip())
    writer.close()
    server.close()
    await server.wait_closed()


asyncio.run(main(int(sys.argv[1])))
