import pytest

from tooling.config import WorkshopError
from tooling.generate import chapter_with_time, expected_diffs, hours, pages_with_times
from tooling.words import shown


def test_committed_diffs_match_the_steps():
    for path, text in expected_diffs().items():
        assert path.exists(), f"{path.name} is missing: run `python workshop.py generate`"
        assert path.read_text(encoding="utf-8") == text, f"{path.name} is stale: run `python workshop.py generate`"


def test_tables_of_steps_and_every_time_shown_match_steps_json():
    """The README's table, the outline's table and total, and each chapter's first line: one time per step."""
    stale = [shown(path) for path, text in pages_with_times().items() if path.read_text(encoding="utf-8") != text]

    assert stale == [], "these disagree with steps.json: run `python workshop.py generate`"


def test_a_chapter_gets_its_steps_time_in_its_first_line():
    chapter = "# Step 09 · Something\n\nAbout 10 minutes. Code: here.\n\nAbout 10 minutes.\n"

    assert chapter_with_time(chapter, 25, "example.md") == chapter.replace("10", "25", 1)


def test_a_chapter_without_a_time_stops_generate_with_its_name():
    with pytest.raises(WorkshopError, match="example.md"):
        chapter_with_time("# Step 09 · Something\n\nAbout half an hour.\n", 25, "example.md")


@pytest.mark.parametrize(
    ("minutes", "written"), [(45, "45 minutes"), (60, "1 hour"), (90, "1 hour 30 minutes"), (300, "5 hours")]
)
def test_times_are_written_in_hours_and_minutes(minutes, written):
    assert hours(minutes) == written
