"""A small ASGI app served by uvicorn's pure-Python stack (asyncio's loop, h11), as `pip install uvicorn` gives it."""
import sys

import uvicorn


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    body = f"hello from uvicorn, client {scope['client'][0]}\n".encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": body})


if __name__ == "__main__":
    uvicorn.run(app, host="0.0.0.0", port=int(sys.argv[1]), loop="asyncio", http="h11", log_level="warning")
