"""Page tables: a long table goes to the browser lazily, a short one whole."""

from __future__ import annotations

import polars as pl
import pytest

from ui import widgets


@pytest.mark.parametrize(
    ("rows", "page", "sent", "pages"),
    [
        (250, None, ["PR-0", "PR-249"], None),  # one page: no page picker
        (251, 0, ["PR-0", "PR-249"], ["1–250", "251–251"]),
        (251, 1, ["PR-250", "PR-250"], ["1–250", "251–251"]),
        (3_000, 7, ["PR-1750", "PR-1999"], ["1–250", *[f"{k * 250 + 1:,}–{(k + 1) * 250:,}" for k in range(1, 8)]]),
    ],
)
def test_a_long_table_is_sent_a_page_at_a_time(
    monkeypatch: pytest.MonkeyPatch, rows: int, page: int | None, sent: list[str], pages: list[str] | None
) -> None:
    """Streamlit's lazy delivery sent the first 1,000 rows anyway; a table goes 250 rows at a time, of at most 2,000."""
    shown: list[dict[str, object]] = []
    picked: list[list[str]] = []

    def selectbox(label: str, options: range, format_func: object, **kwargs: object) -> int:
        picked.append([format_func(o) for o in options])  # type: ignore[operator]
        return page  # type: ignore[return-value]

    monkeypatch.setattr(widgets.st, "dataframe", lambda data, **kwargs: shown.append({"data": data, **kwargs}))
    monkeypatch.setattr(widgets.st, "selectbox", selectbox)
    monkeypatch.setattr(widgets.st, "download_button", lambda *args, **kwargs: None)
    monkeypatch.setattr(widgets, "_paged_table", widgets._show_page)  # the fragment runs only inside a server
    widgets.table(pl.DataFrame({"pr_id": [f"PR-{i}" for i in range(rows)]}), key="dora.prs")
    assert len(shown) == 1 and shown[0]["key"] == "dora.prs"
    ids = shown[0]["data"].column("pr_id").to_pylist()  # type: ignore[attr-defined]
    assert [ids[0], ids[-1]] == sent
    assert picked == ([] if pages is None else [pages])
