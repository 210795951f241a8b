"""aiohttp's web server (AppRunner + TCPSite) and its ClientSession, in one event loop; with a second
argument the server stays up that many seconds for other clients."""
import asyncio
import sys

from aiohttp import ClientSession, web


async def hello(request):
    return web.Response(text="aiohttp served %s" % request.remote)


async def main(port, linger):
    app = web.Application()
    app.router.add_get("/", hello)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "0.0.0.0", port).start()
    print("aiohttp ready", flush=True)
    async with ClientSession() as session:
        async with session.get("http://localhost:%d/" % port) as response:
            print(response.status, await response.text(), flush=True)
    await asyncio.sleep(linger)
    await runner.cleanup()


asyncio.run(main(int(sys.argv[1]), float(sys.argv[2]) if len(sys.argv) > 2 else 0))
