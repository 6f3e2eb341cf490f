from workshop import CaseResult, behaviours


def test_behaviours_are_test_names_in_plain_words_failures_first():
    cases = [
        CaseResult("tests.test_echo", "test_message_is_echoed_to_the_sender", "passed", ""),
        CaseResult("tests.test_handshake", "test_foreign_origin_is_refused[http://evil.example]", "failed", ""),
        CaseResult("tests.test_handshake", "test_foreign_origin_is_refused[http://other.example]", "passed", ""),
        CaseResult("", "tests.test_bad_input", "failed", "ModuleNotFoundError: No module named 'chat.messages'"),
        CaseResult("tests.test_room_page", "test_room_page_links_back_to_the_index", "skipped", ""),
    ]

    assert behaviours(cases) == [
        ("failed", "foreign origin is refused (fails for http://evil.example)"),
        ("failed", "tests/test_bad_input.py cannot be loaded: ModuleNotFoundError: No module named 'chat.messages'"),
        ("skipped", "room page links back to the index"),
        ("passed", "message is echoed to the sender"),
    ]
