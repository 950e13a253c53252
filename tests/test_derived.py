"""Heavy results are kept beside their snapshot, read back after a restart, and never served stale."""

from __future__ import annotations

import base64
import re
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import streamlit as st

from core import derived
from tests.apptest import rendered_text, signed_in


def test_a_result_is_computed_once_then_read_back(tmp_path: Path) -> None:
    calls: list[int] = []
    frame = pl.DataFrame(
        {"feature_id": ["F1", "F2"], "cost": [10.5, None], "day": [date(2026, 1, 5), None], "with": [["F2"], []]}
    )

    def compute() -> pl.DataFrame:
        calls.append(1)
        return frame

    first = derived.remembered(tmp_path, "rollup", "settings-a", compute)
    again = derived.remembered(tmp_path, "rollup", "settings-a", compute)
    assert len(calls) == 1
    assert again.equals(first) and again.schema == frame.schema
    assert derived.path_of(tmp_path, "rollup", "settings-a").exists()

    derived.remembered(tmp_path, "rollup", "settings-b", compute)
    assert len(calls) == 2, "other settings are another result"


def test_a_damaged_file_is_recomputed_and_replaced(tmp_path: Path) -> None:
    path = derived.path_of(tmp_path, "judged", "")
    path.parent.mkdir()
    path.write_bytes(b"PAR1 cut short")
    result = derived.remembered(tmp_path, "judged", "", lambda: pl.DataFrame({"x": [1, 2]}))
    assert result["x"].to_list() == [1, 2]
    assert pl.read_parquet(path)["x"].to_list() == [1, 2]


def test_a_missing_snapshot_folder_still_answers_without_saving(tmp_path: Path) -> None:
    gone = tmp_path / "v9"
    result = derived.remembered(gone, "judged", "", lambda: pl.DataFrame({"x": [3]}))
    assert result["x"].to_list() == [3]
    assert not gone.exists()


def _rounded(text: str) -> str:
    """Page text with numbers cut to 9 significant digits: parallel sums differ from run to run in the last bits.

    Plotly sends float arrays as base64 (``bdata``); those are decoded and cut the same way.
    """

    def decoded(match: re.Match[str]) -> str:
        values = np.frombuffer(base64.b64decode(match.group(2)), dtype=np.dtype(match.group(1)).newbyteorder("<"))
        return "[" + ", ".join(f"{v:.9g}" for v in values) + "]"

    text = re.sub(r'"dtype": "(\w+)", "bdata": "([^"]*)"', decoded, text)
    return re.sub(r"\d+\.\d+", lambda m: f"{float(m.group()):.9g}", text)


@pytest.mark.parametrize("page", ["pages/home.py", "pages/throughput.py", "pages/cost.py"])
def test_a_restarted_app_shows_the_same_page_from_the_kept_results(
    demo_workspace: dict, monkeypatch: pytest.MonkeyPatch, page: str
) -> None:
    at = signed_in(demo_workspace, "delivery_lead", monkeypatch)
    at.switch_page(page).run()
    assert not at.exception, at.exception
    before = _rounded(rendered_text(at))
    kept = sorted(p.name.split("-")[0] for p in Path(demo_workspace["home"]).glob("snapshot/v*/derived/*.parquet"))
    assert {"judged", "cost_rollup", "daily_throughput"} <= set(kept)

    st.cache_resource.clear()  # what a server restart loses
    st.cache_data.clear()
    again = signed_in(demo_workspace, "delivery_lead", monkeypatch)
    again.switch_page(page).run()
    assert not again.exception, again.exception
    assert _rounded(rendered_text(again)) == before
