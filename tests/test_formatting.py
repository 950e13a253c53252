"""Column names become reader's labels the same way on every page: type endings dropped, acronyms kept."""

from __future__ import annotations

import polars as pl
import pytest

from core.formatting import human_label
from ui import format as fmt


@pytest.mark.parametrize(
    ("column", "label"),
    [
        ("last_merged_at", "Last merged"),
        ("team_id", "Team"),
        ("feature_id", "Feature"),
        ("must_change_password", "Must change password"),
        ("prs_merged", "PRs merged"),
        ("pr_size_median", "PR size median"),
        ("ci_minutes", "CI minutes"),
        ("id", "Id"),
        ("at", "At"),
        ("_private_", "Private"),
    ],
)
def test_a_column_name_reads_as_a_label(column: str, label: str) -> None:
    assert human_label(column) == label


def test_headings_keep_given_labels_and_put_every_other_column_in_words() -> None:
    frame = pl.DataFrame({"team_id": ["PAY"], "deployed_at": [None], "prs": [3]})
    assert fmt.headings(frame, {"prs": "PRs merged"}) == {
        "team_id": "Team",
        "deployed_at": "Deployed",
        "prs": "PRs merged",
    }


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (0, "0 USD"),
        (698.13, "698.13 USD"),
        (48_213, "48.2k USD"),
        (1_065_704, "1.07M USD"),
        (999_600, "1M USD"),
        (-12_345, "−12.3k USD"),
        (None, "—"),
    ],
)
def test_a_tile_shows_money_in_three_figures_with_its_currency(value: float | None, shown: str) -> None:
    assert fmt.money_compact(value, "USD") == shown
