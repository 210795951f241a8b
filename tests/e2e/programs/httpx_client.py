"""httpx, sync and async (httpcore over anyio), fetching a file from a web server on this machine."""
import asyncio
import sys

import httpx

url = "http://localhost:%s/served.txt" % sys.argv[1]
print(httpx.get(url, timeout=30).text.strip())


async def fetch():
    async with httpx.AsyncClient(timeout=30) as client:
        return (await client.get(url)).text.strip()


print(asyncio.run(fetch()))
