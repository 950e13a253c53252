"""Page tables: a long table goes to the browser lazily, a short one whole."""

from __future__ import annotations

import polars as pl
import pytest

from ui import widgets


@pytest.mark.parametrize(("rows", "sent_rows", "lazy"), [(200, 200, None), (201, 201, True), (3_000, 2_000, True)])
def test_a_long_table_is_sent_as_the_rows_in_view(
    monkeypatch: pytest.MonkeyPatch, rows: int, sent_rows: int, lazy: bool | None
) -> None:
    sent: list[dict[str, object]] = []
    monkeypatch.setattr(widgets.st, "dataframe", lambda data, **kwargs: sent.append({"rows": data.num_rows, **kwargs}))
    monkeypatch.setattr(widgets.st, "download_button", lambda *args, **kwargs: None)
    widgets.table(pl.DataFrame({"pr_id": [f"PR-{i}" for i in range(rows)]}), key="dora.prs")
    assert [(s["rows"], s["lazy"], s["key"]) for s in sent] == [(sent_rows, lazy, "dora.prs")]
