from workshop import README, expected_diffs, readme_with_table


def test_committed_diffs_match_the_steps():
    for path, text in expected_diffs().items():
        assert path.exists(), f"{path.name} is missing: run `python workshop.py generate`"
        assert path.read_text(encoding="utf-8") == text, f"{path.name} is stale: run `python workshop.py generate`"


def test_readme_table_of_steps_matches_steps_json():
    readme = README.read_text(encoding="utf-8")

    assert readme == readme_with_table(readme), "the README's table is stale: run `python workshop.py generate`"
