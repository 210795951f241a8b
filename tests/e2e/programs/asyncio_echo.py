"""An asyncio echo server and client: start_server / open_connection with a host and a port."""
import asyncio
import sys


async def echo(reader, writer):
    writer.write((await reader.readline()).upper())
    await writer.drain()
    writer.close()


async def main(port):
    server = await asyncio.start_server(echo, "0.0.0.0", port)
    async with server:
        reader, writer = await asyncio.open_connection("localhost", port)
        writer.write(b"asyncio over vsock\n")
        await writer.drain()
        print((await reader.readline()).decode().strip())
        writer.close()


asyncio.run(main(int(sys.argv[1])))
