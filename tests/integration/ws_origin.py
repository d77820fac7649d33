#!/usr/bin/python3
"""A real WebSocket origin for the proxy's upgrade tests: the `websockets` library (Debian's
python3-websockets, so run with /usr/bin/python3).

  /echo     echoes every message, text or binary
  /hello    sends "hello" at once, then echoes
  /refuse   refuses the handshake: 403 with a body (an ordinary HTTP response)
  /bye      closes the connection (close code 1000) after its first message

Usage: ws_origin.py PORT
"""
import asyncio
import http
import sys

import websockets


async def handler(ws, path=None):
    path = path or ws.path
    if path == "/hello":
        await ws.send("hello")
    async for msg in ws:
        if path == "/bye":
            await ws.close(1000, "bye")
            return
        await ws.send(msg)


async def process_request(path, headers):
    if path == "/refuse":
        return http.HTTPStatus.FORBIDDEN, [("Content-Type", "text/plain"), ("X-Refused", "yes")], b"no websocket here\n"
    return None


async def main(port):
    async with websockets.serve(handler, "127.0.0.1", port, process_request=process_request, max_size=2 ** 22):
        await asyncio.Future()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
