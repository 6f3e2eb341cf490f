import re

from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render

from .messages import MAX_MESSAGE_LENGTH
from .room_names import PATTERN


@login_required
def index(request):
    # The form works without JavaScript: the browser checks the pattern, and so does the server.
    room_name = request.GET.get("room_name", "").strip()
    if re.fullmatch(PATTERN, room_name):
        return redirect("room", room_name=room_name)
    return render(request, "chat/index.html", {"room_name": room_name, "room_name_pattern": PATTERN})


@login_required
def room(request, room_name):
    return render(request, "chat/room.html", {"room_name": room_name, "max_message_length": MAX_MESSAGE_LENGTH})
