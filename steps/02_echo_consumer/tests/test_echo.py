async def test_message_is_echoed_to_the_sender(open_socket):
    socket = await open_socket()

    await socket.send_json_to({"message": "hello"})

    assert await socket.receive_json_from() == {"message": "hello"}


async def test_unicode_and_markup_come_back_unchanged(open_socket):
    socket = await open_socket()
    text = "héllo 👋 <script>alert(1)</script>"

    await socket.send_json_to({"message": text})

    assert await socket.receive_json_from() == {"message": text}


async def test_echo_does_not_reach_another_socket_in_the_room(open_socket):
    sender = await open_socket("lobby")
    neighbour = await open_socket("lobby")

    await sender.send_json_to({"message": "only for me"})

    assert await sender.receive_json_from() == {"message": "only for me"}
    assert await neighbour.receive_nothing()
