"""Saves what the sockets of this process take in batches: each batch in one transaction, however many messages."""

import asyncio
import collections
import functools
import json
import logging
import time
import weakref

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.db import transaction

from .models import Message, Room
from .outages import REDIS_ERRORS

logger = logging.getLogger(__name__)

# What may wait to be saved, in this process and from one socket: past either, a message is refused, never dropped.
# 800 is under half a second of what one process saves and sends to rooms of 20.
MAX_UNSAVED = 800
MAX_UNSAVED_PER_SOCKET = 20
# Deliveries this late mean the process has more to send than it can: it takes nothing new until it catches up.
MAX_DELIVERY_LAG_SECONDS = 0.5
# How long a batch waits for more messages before it is saved: what every message waits, and what keeps a busy
# process to one transaction and one frame per room every 20 ms instead of one for each message.
GATHER_SECONDS = 0.02

# A message a socket took, and a future done (with whether it was saved) once it is saved and sent to the room.
Taken = collections.namedtuple("Taken", "consumer body client_id read_at done")


def as_json(message):
    """A message as the page gets it: encoded once, whatever the number of sockets it goes to."""
    fields = {"id": message.id, "number": message.number, "author": message.author.username, "message": message.body}
    return json.dumps({**fields, "created": message.created.isoformat(), "client_id": message.client_id})


def as_frame(messages_as_json):
    """One frame for several messages, each encoded already."""
    return '{"messages": [' + ", ".join(messages_as_json) + "]}"


@database_sync_to_async
def save_batch(batch):
    """Each message of the batch, and whether it is new rather than saved before, as a message a page sends again."""
    with transaction.atomic():
        # Locks the rooms until the transaction ends; on SQLite, BEGIN IMMEDIATE has locked the whole database.
        rooms = Room.objects.select_for_update().in_bulk({taken.consumer.room.pk for taken in batch})
        client_ids = {taken.client_id for taken in batch if taken.client_id}
        saved = Message.objects.filter(client_id__in=client_ids).select_related("author") if client_ids else []
        by_client_id = {(message.author_id, message.client_id): message for message in saved}
        results = []
        for taken in batch:
            key = (taken.consumer.user.pk, taken.client_id)
            if taken.client_id and key in by_client_id:
                results.append((by_client_id[key], False))
                continue
            room = rooms[taken.consumer.room.pk]
            room.last_number += 1
            message = Message(room=room, number=room.last_number, author=taken.consumer.user, body=taken.body)
            message.client_id = taken.client_id
            by_client_id[key] = message
            results.append((message, True))
        Message.objects.bulk_create([message for message, new in results if new])
        for room in rooms.values():
            Room.objects.filter(pk=room.pk).update(last_number=room.last_number)
    return results


class Saver:
    """The saver of this process (strictly, of its event loop)."""

    _of_loop = weakref.WeakKeyDictionary()

    @classmethod
    def of_this_process(cls):
        loop = asyncio.get_running_loop()
        if loop not in cls._of_loop:
            cls._of_loop[loop] = cls()
        return cls._of_loop[loop]

    def __init__(self):
        self.waiting = []  # what the sockets took for the next batch, in the order it came
        self.unsaved = collections.Counter()  # what each socket took and is not yet saved and sent
        self.saving = None  # the task that saves batch after batch while any wait
        self.broadcasts = {}  # each room's latest broadcast, while it runs
        self.telling = set()  # tasks telling a socket what became of its messages
        self.late_until = 0.0  # the process takes nothing new until then: a delivery ran late

    def note_delivery(self, lag):
        if lag > MAX_DELIVERY_LAG_SECONDS:
            self.late_until = time.monotonic() + 1

    def take(self, consumer, body, client_id, read_at):
        """The future of the message, or None when the process is too busy to take it."""
        late = time.monotonic() < self.late_until
        if late or self.unsaved.total() >= MAX_UNSAVED or self.unsaved[consumer] >= MAX_UNSAVED_PER_SOCKET:
            return None
        taken = Taken(consumer, body, client_id, read_at, asyncio.get_running_loop().create_future())
        self.unsaved[consumer] += 1
        taken.done.add_done_callback(functools.partial(self.done_with, consumer))
        self.waiting.append(taken)
        if self.saving is None:
            self.saving = asyncio.create_task(self.save_while_any_wait())
        return taken.done

    def done_with(self, consumer, _):
        self.unsaved[consumer] -= 1
        if not self.unsaved[consumer]:
            del self.unsaved[consumer]

    async def save_while_any_wait(self):
        try:
            while self.waiting:
                await asyncio.sleep(GATHER_SECONDS)
                batch, self.waiting = self.waiting, []
                await self.save(batch)
        finally:
            self.saving = None

    async def save(self, batch):
        try:
            results = await save_batch(batch)
        except Exception as error:
            logger.exception("Could not save %d messages; their pages will send them again.", len(batch))
            self.give_up(batch, error)
            return
        rooms = collections.defaultdict(list)
        for taken, (message, is_new) in zip(batch, results, strict=True):
            if is_new:
                rooms[taken.consumer.room_group_name].append((taken, message))
            else:
                # Sent again after a reconnect: the room has it already; its page learns it is saved.
                self.tell(taken.consumer.send(text_data=as_frame([as_json(message)])))
                taken.done.set_result(True)
        for group, saved in rooms.items():
            previous = self.broadcasts.get(group)
            self.broadcasts[group] = asyncio.create_task(self.broadcast(previous, group, saved))
            self.broadcasts[group].add_done_callback(functools.partial(self.forget_broadcast, group))

    async def broadcast(self, previous, group, saved):
        # Once the room's previous share is sent: in order, and no room waits for another.
        if previous is not None:
            await asyncio.wait([previous])
        # Numbers first to last, one after the other: the batch locked the room while it numbered them.
        event = {"type": "chat.messages", "first": saved[0][1].number, "last": saved[-1][1].number}
        event["frame"] = as_frame([as_json(message) for _, message in saved])
        try:
            await get_channel_layer().group_send(group, {**event, "read_at": saved[0][0].read_at})
        except REDIS_ERRORS as error:
            self.give_up([], error, senders=[taken.consumer for taken, _ in saved])
        for taken, _ in saved:
            taken.done.set_result(True)

    def forget_broadcast(self, group, task):
        if self.broadcasts.get(group) is task:
            del self.broadcasts[group]

    def give_up(self, batch, error, senders=()):
        # The senders are told which of their messages were not saved, those that waited behind too, and closed.
        senders = dict.fromkeys([*senders, *(taken.consumer for taken in batch)])
        not_saved = batch + [taken for taken in self.waiting if taken.consumer in senders]
        self.waiting = [taken for taken in self.waiting if taken.consumer not in senders]
        for consumer in senders:
            self.tell(consumer.not_saved([taken.client_id for taken in not_saved if taken.consumer is consumer], error))
        for taken in not_saved:
            taken.done.set_result(False)

    def tell(self, coroutine):
        # In a task of its own: the saver never waits for a slow socket, nor fails with one that has gone.
        task = asyncio.create_task(coroutine)
        self.telling.add(task)
        task.add_done_callback(self.told)

    def told(self, task):
        self.telling.discard(task)
        if not task.cancelled():
            task.exception()  # a socket that has gone: there is no one left to tell
