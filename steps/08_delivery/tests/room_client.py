"""A client that keeps to room.js's side of the protocol, for the tests that stop a server under it."""

import asyncio
import itertools
import json

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake


class RoomClient:
    """Gives each message an id and keeps it until the server answers for it; after a reconnect, to the next of
    `servers` when its own has stopped, sends those again. Records every number it sees and every close code."""

    def __init__(self, name, servers, room_name, cookie, username):
        self.name, self.servers, self.room_name, self.cookie, self.username = name, servers, room_name, cookie, username
        self.last_number = 0  # every message up to it has arrived
        self.numbers = set()
        self.unsaved = {}  # client id: text, in the order sent
        self.answered = 0
        self.ids = (f"{name}-{number}" for number in itertools.count(1))
        self.close_codes = []
        self.socket = None
        self.open = asyncio.Event()

    async def stay_connected(self):
        """Connects, reconnects when the server closes the socket, and reads; until cancelled."""
        for server in itertools.cycle(self.servers):
            url = f"{server}/ws/chat/{self.room_name}/?after={self.last_number}"
            origin = server.replace("ws://", "http://")
            try:
                async with connect(url, origin=origin, additional_headers={"Cookie": self.cookie}) as socket:
                    self.socket = socket
                    for client_id, text in list(self.unsaved.items()):
                        await socket.send(json.dumps({"message": text, "client_id": client_id}))
                    self.open.set()
                    async for frame in socket:
                        for message in json.loads(frame)["messages"]:
                            self.read(message)
            except (OSError, InvalidHandshake, ConnectionClosed):
                pass
            self.open.clear()
            if self.socket is not None and self.socket.close_code is not None:
                self.close_codes.append(self.socket.close_code)
                self.socket = None

    def read(self, message):
        self.numbers.add(message["number"])
        while self.last_number + 1 in self.numbers:
            self.last_number += 1
        if message["author"] == self.username and self.unsaved.pop(message["client_id"], None) is not None:
            self.answered += 1

    async def send(self, text):
        client_id = next(self.ids)
        self.unsaved[client_id] = text
        await self.open.wait()
        try:
            await self.socket.send(json.dumps({"message": text, "client_id": client_id}))
        except ConnectionClosed:
            pass  # sent again once it has reconnected

    async def ask_for_what_is_missing(self):
        """As room.js does when a number stays missing."""
        await self.open.wait()
        await self.socket.send(json.dumps({"fetch_after": self.last_number}))
