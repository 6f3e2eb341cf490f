"""The code in the chapters: each include line's fenced block, written from the file it names."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from tooling.config import CHAPTERS_DIR, ROOT, WorkshopError
from tooling.diffs import read_lines

# The code in the chapters. A line `<!-- include: PATH -->` in docs/*.md is followed by a fenced
# block that `generate` rewrites with the file at PATH (relative to the repository). Two kinds of
# part can follow a '#': `PATH.diff#chat/routing.py` shows one file's changes from a step diff, and
# `PATH.py#NAME` shows one top-level class, function or assignment (`NAME.method` for a method).
INCLUDE = re.compile(r"<!-- include: (?P<source>[^\s#]+)(?:#(?P<part>\S+))? -->")
FENCE = re.compile(r"^ {0,3}(?P<fence>`{3,}|~{3,})")
LANGUAGES = {
    ".py": "python",
    ".js": "javascript",
    ".html": "html+django",
    ".css": "css",
    ".diff": "diff",
    ".ini": "ini",
    ".json": "json",
    ".toml": "toml",
    ".txt": "text",
}


def chapter_paths() -> list[Path]:
    return sorted(CHAPTERS_DIR.glob("*.md"))


def find_closing_fence(lines: list[str], start: int, fence: str, name: str) -> int:
    for index in range(start, len(lines)):
        stripped = lines[index].strip()
        if stripped.startswith(fence) and set(stripped) == {fence[0]}:
            return index
    raise WorkshopError(f"{name}: a code block opened at line {start} is never closed.")


def diff_of_one_file(diff: str, part: str, where: str) -> str:
    """The headers and hunks of one file in a step diff; part is the path inside the step."""
    lines = diff.splitlines(keepends=True)
    starts = [
        index
        for index in range(len(lines) - 1)
        if lines[index].startswith("--- ") and lines[index + 1].startswith("+++ ")
    ]
    for start, end in zip(starts, [*starts[1:], len(lines)], strict=True):
        old, new = (lines[start + offset][4:].strip() for offset in (0, 1))
        paths = {label.split("/", 2)[-1] for label in (old, new) if label != "/dev/null"}
        if part in paths:
            return "".join(lines[start:end])
    raise WorkshopError(f"{where}: the diff has no changes to {part}.")


def python_definition(code: str, part: str, where: str) -> str:
    """The source lines of a class, function or assignment, found by name (`Class.method` for a method)."""

    def names(node: ast.stmt) -> set[str]:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            return {node.name}
        if isinstance(node, ast.Assign):
            return {target.id for target in node.targets if isinstance(target, ast.Name)}
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            return {node.target.id}
        return set()

    body = ast.parse(code).body
    for name in part.split("."):
        node = next((candidate for candidate in body if name in names(candidate)), None)
        if node is None:
            raise WorkshopError(f"{where}: no class, function or assignment named {part}.")
        body = getattr(node, "body", [])
    first = min([node.lineno, *(decorator.lineno for decorator in getattr(node, "decorator_list", []))])
    return "".join(code.splitlines(keepends=True)[first - 1 : node.end_lineno])


def included_code(source: str, part: str | None, where: str) -> str:
    path = (ROOT / source).resolve()
    if ROOT not in path.parents or not path.is_file():
        raise WorkshopError(f"{where}: there is no file {source} in the repository to include.")
    text = "".join(read_lines(path))
    if part is None:
        return text
    if path.suffix == ".diff":
        return diff_of_one_file(text, part, where)
    if path.suffix == ".py":
        return python_definition(text, part, where)
    raise WorkshopError(f"{where}: only .diff and .py files can be included in part, not {source}.")


def fenced(text: str, source: str) -> str:
    """A Markdown code block around text, its fence longer than any backtick run inside."""
    longest = max((len(run) for run in re.findall(r"`{3,}", text)), default=2)
    fence = "`" * (longest + 1)
    language = LANGUAGES.get(Path(source).suffix, "")
    ending = "" if text.endswith("\n") or not text else "\n"
    return f"{fence}{language}\n{text}{ending}{fence}\n"


def with_included_code(markdown: str, name: str) -> str:
    """The Markdown text with the fenced block after every include line regenerated."""
    lines = markdown.splitlines(keepends=True)
    output: list[str] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        output.append(line)
        index += 1
        opening = FENCE.match(line)
        if opening:
            # Copy a hand-written block as it is, so an include line quoted inside it stays text.
            closing = find_closing_fence(lines, index, opening.group("fence"), name)
            output.extend(lines[index : closing + 1])
            index = closing + 1
            continue
        include = INCLUDE.fullmatch(line.strip())
        if not include:
            continue
        where = f"{name} line {index}"
        if index < len(lines) and (block := FENCE.match(lines[index])):
            index = find_closing_fence(lines, index + 1, block.group("fence"), name) + 1
        output.append(fenced(included_code(include["source"], include["part"], where), include["source"]))
    return "".join(output)


def update_chapters() -> None:
    paths = chapter_paths()
    for path in paths:
        text = with_included_code(path.read_text(encoding="utf-8"), path.relative_to(ROOT).as_posix())
        path.write_text(text, encoding="utf-8", newline="\n")
    print(f"workshop: refreshed the included code in {len(paths)} Markdown files in docs/")
