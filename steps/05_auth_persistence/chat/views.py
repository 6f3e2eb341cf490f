from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from .messages import MAX_MESSAGE_LENGTH
from .room_names import PATTERN


@login_required
def index(request):
    return render(request, "chat/index.html", {"room_name_pattern": PATTERN})


@login_required
def room(request, room_name):
    return render(request, "chat/room.html", {"room_name": room_name, "max_message_length": MAX_MESSAGE_LENGTH})
