from django.conf import settings
from django.db import models


class Room(models.Model):
    name = models.CharField(max_length=90, unique=True)
    # The number of the room's latest message: 0 before the first.
    last_number = models.PositiveBigIntegerField(default=0)

    def __str__(self):
        return self.name


class Message(models.Model):
    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="messages")
    # 1, 2, 3, … in the order the room's messages were saved, with no gaps, whichever process saved them.
    number = models.PositiveBigIntegerField()
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="chat_messages")
    body = models.TextField()
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["room", "number"], name="chat_one_message_per_number"),
        ]

    def __str__(self):
        return self.body
