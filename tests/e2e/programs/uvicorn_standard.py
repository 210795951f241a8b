"""uvicorn as `pip install uvicorn[standard]` runs it: uvloop and httptools installed, loop and HTTP
parser chosen by uvicorn ("auto"), started as uvicorn's docs show for a Config and a Server."""
import asyncio
import sys

import uvicorn


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    loop = type(asyncio.get_running_loop()).__name__
    body = f"hello from uvicorn[standard] ({PROTOCOL}, {loop}), client {scope['client'][0]}\n".encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": body})


if __name__ == "__main__":
    config = uvicorn.Config(app, host="localhost", port=int(sys.argv[1]), log_level="warning")
    config.load()
    PROTOCOL = config.http_protocol_class.__name__
    uvicorn.Server(config).run()
