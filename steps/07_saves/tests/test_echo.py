async def test_message_is_echoed_to_the_sender(open_socket):
    socket = await open_socket()

    await socket.send_json_to({"message": "hello"})

    assert (await socket.receive_json_from())["message"] == "hello"


async def test_unicode_and_markup_come_back_unchanged(open_socket):
    socket = await open_socket()
    text = "héllo 👋 <script>alert(1)</script>"

    await socket.send_json_to({"message": text})

    assert (await socket.receive_json_from())["message"] == text
