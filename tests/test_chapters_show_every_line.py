"""An attendee can type each step from its chapter alone: every line of code the step adds is shown in it."""

import re

import pytest
from test_docs import COMMAND_LANGUAGES, fenced_blocks, prose

from tooling.config import DIFFS_DIR, ROOT, STEPS, STEPS_DIR
from tooling.diffs import NOT_CODE, is_test_file, step_files
from tooling.includes import INCLUDE, included_code

DOCS = ROOT / "docs"
# A chapter may have the attendee copy a whole file instead, e.g. `cp ../steps/01_http/chat/static/chat/style.css
# chat/static/chat/style.css` (Windows: `copy`); the step's folder name and the path inside it are what count.
COPY = re.compile(r"^\s*(?:cp|copy)\s+\S*steps[/\\](?P<slug>\w+)[/\\](?P<path>\S+)\s+\S+\s*$")


# How the steps' tests find an element: element(html, "chat-log"), locator("#chat-log li"), by_id["chat-log"].
ELEMENT_ID = re.compile(r'element\(\w+, "([\w-]+)"\)|"#([\w-]+)|by_id\[?"([\w-]+)"|"([\w-]+)" (?:not )?in Page\(')


def ids_the_tests_need(slug: str) -> set[str]:
    step = STEPS_DIR / slug
    texts = [(step / path).read_text(encoding="utf-8") for path in step_files(step) if path.startswith("tests/test_")]
    return {next(filter(None, found)) for text in texts for found in ELEMENT_ID.findall(text)}


def added_code(slug: str) -> list[tuple[str, str]]:
    """(path, line) for each line of code the step's diff adds: no tests, migrations, blank or comment lines."""
    added, path = [], None
    for line in (DIFFS_DIR / f"{slug}.diff").read_text(encoding="utf-8").splitlines():
        if line.startswith("+++ "):
            path = line[4:].split("/", 2)[-1]
        elif line.startswith("--- ") or not line.startswith("+") or NOT_CODE.match(line[1:]):
            continue
        elif not is_test_file(path) and "/migrations/" not in f"/{path}":
            added.append((path, line[1:].strip()))
    return added


def shown_code(chapter: str) -> tuple[set[str], set[str]]:
    """The lines the chapter's included code shows, and the paths it has the attendee copy whole."""
    lines = set()
    for match in INCLUDE.finditer(prose(chapter)):
        text = included_code(match["source"], match["part"], "a chapter")
        is_diff = match["source"].endswith(".diff")
        for line in text.splitlines():
            if is_diff and line[:1] in "+ " and not line.startswith("+++ "):
                lines.add(line[1:].strip())
            elif not is_diff:
                lines.add(line.strip())
    copied = {
        found["path"].replace("\\", "/")
        for block in fenced_blocks(chapter)
        if block.language in COMMAND_LANGUAGES
        for line in block.lines
        if (found := COPY.match(line))
    }
    return lines, copied


@pytest.mark.parametrize("slug", STEPS)
def test_every_line_a_step_adds_is_shown_in_its_chapter(slug):
    lines, copied = shown_code((DOCS / f"{slug}.md").read_text(encoding="utf-8"))

    missing: dict[str, list[str]] = {}
    for path, line in added_code(slug):
        if line not in lines and path not in copied:
            missing.setdefault(path, []).append(line)

    assert missing == {}, f"docs/{slug}.md does not show these lines its step adds (include the file or its diff)"


@pytest.mark.parametrize("slug", STEPS)
def test_every_element_id_a_steps_tests_need_is_named_in_its_chapter_or_before(slug):
    chapters = "".join(
        (DOCS / f"{earlier}.md").read_text(encoding="utf-8") for earlier in STEPS[: STEPS.index(slug) + 1]
    )

    assert sorted(name for name in ids_the_tests_need(slug) if name not in chapters) == []


def test_the_ids_of_the_first_step_are_found_in_its_tests():
    assert {"room-name-input", "room-name-submit", "room-form", "room-name-error", "room-name-heading"} <= (
        ids_the_tests_need(STEPS[0])
    )


def test_a_line_left_out_of_a_chapter_is_found():
    lines, copied = shown_code("<!-- include: steps/01_http/chat/urls.py -->\n```python\n```\n")

    assert "from . import views" in lines and "def index(request):" not in lines
    assert copied == set()


def test_a_file_copied_whole_counts_as_shown():
    chapter = "```sh\ncp ../steps/01_http/chat/static/chat/style.css chat/static/chat/style.css\n```\n"

    assert shown_code(chapter) == (set(), {"chat/static/chat/style.css"})
