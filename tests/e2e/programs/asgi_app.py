"""A small ASGI app served by uvicorn."""
import sys

import uvicorn


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    body = f"hello from uvicorn, client {scope['client'][0]}\n".encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": body})


if __name__ == "__main__":
    uvicorn.run(app, host="0.0.0.0", port=int(sys.argv[1]), log_level="warning")
