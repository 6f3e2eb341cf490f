"""The single-process ceiling for the benchmark: the websockets library alone, relaying each room's messages.

    python bench/plain_server.py --port 8001

A room is the URL path (/ws/chat/lobby/). A message is {"message": "..."} as in the steps, and goes back to every
socket of its room, the sender's included. Nothing else: no Django, no channel layer, no origin check, one process.
No compression either, as daphne and the deployment's uvicorn: every server of the benchmark sends the same bytes.
It runs on uvloop where the lock installs it, as the deployment's uvicorn does, so that the ceiling is the best loop's.
"""

import argparse
import asyncio
import json

try:
    import uvloop
except ImportError:  # Windows, which uvloop does not run on
    uvloop = None
from websockets.asyncio.server import broadcast, serve

ROOMS: dict[str, set] = {}


async def relay(websocket):
    room = ROOMS.setdefault(websocket.request.path, set())
    room.add(websocket)
    try:
        async for frame in websocket:
            try:
                message = json.loads(frame)["message"]
            except (ValueError, KeyError, TypeError):
                continue
            broadcast(room, json.dumps({"message": message}))
    finally:
        room.discard(websocket)


async def main(port):
    async with serve(relay, "127.0.0.1", port, compression=None) as server:
        await server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    (uvloop.run if uvloop else asyncio.run)(main(parser.parse_args().port))
