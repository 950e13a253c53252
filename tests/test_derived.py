"""Heavy results are kept beside their snapshot, read back after a restart, and never served stale."""

from __future__ import annotations

import base64
import re
import threading
import time
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import streamlit as st
from polars.testing import assert_frame_equal

from core import derived, measures
from core.costs import CostSettings
from core.store import settings
from core.store.database import open_store
from core.store.workspace import Workspace
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


def test_two_callers_asking_at_once_compute_the_result_once(tmp_path: Path) -> None:
    calls: list[int] = []
    started = threading.Event()

    def compute() -> pl.DataFrame:
        calls.append(1)
        started.set()
        time.sleep(0.3)
        return pl.DataFrame({"x": [1]})

    results: list[pl.DataFrame] = []
    first = threading.Thread(target=lambda: results.append(derived.remembered(tmp_path, "rollup", "k", compute)))
    first.start()
    started.wait(5)
    results.append(derived.remembered(tmp_path, "rollup", "k", compute))
    first.join()
    assert len(calls) == 1
    assert [r["x"].to_list() for r in results] == [[1], [1]]


def test_a_write_keeps_the_new_versions_results_before_any_page_asks(sqlite_workspace: Workspace) -> None:
    from core.bootstrap import seed_demo

    (sqlite_workspace.home / "snapshot").mkdir(exist_ok=True)
    store = open_store(sqlite_workspace)
    seed_demo(store, seed=7, scale=0.1)
    kept: list[int] = []
    store.after_write = lambda s: (derived.keep_results(s), kept.append(s.data_version()))
    features = store.read("features").head(1).with_columns(pl.lit("Renamed in the test").alias("name"))
    version = store.write({"features": features}, source="test").data_version
    assert kept == [version]

    folder = store.snapshot_folder(version)
    names = sorted(p.name.split("-")[0] for p in (folder / derived.FOLDER).glob("*.parquet"))
    assert names == ["cost_rollup", "daily_throughput", "judged", "unattributed_events"]
    frames = store.snapshot().frames()
    expected = measures.cost_rollup(frames, CostSettings()).collect()
    keys = ["occurred_at", "source", "rule", "feature_id", "team_id"]
    kept_rollup = pl.read_parquet(derived.path_of(folder, "cost_rollup", settings.fingerprint(CostSettings())))
    assert_frame_equal(kept_rollup.sort(keys, nulls_last=True), expected.sort(keys, nulls_last=True), rel_tol=1e-9)
    kept_events = pl.read_parquet(derived.path_of(folder, "unattributed_events", settings.fingerprint(CostSettings())))
    unattributed = measures.cost_lines(frames, CostSettings()).filter(pl.col("rule") == "unattributed").collect()
    assert kept_events.height > 0
    assert sorted(kept_events["event_id"]) == sorted(unattributed["event_id"])
    store.engine.dispose()
