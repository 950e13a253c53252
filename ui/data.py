"""Cached access to the workspace snapshot: loaded frames once per data version, shared by all sessions."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import polars as pl
import streamlit as st

from core.access import Viewer
from core.store import settings
from core.store.database import Store
from core.store.settings import SettingsT
from ui.session import current_store, viewer


@dataclass(frozen=True)
class PageData:
    """What a page works with: who is looking, the store, and the snapshot's frames."""

    viewer: Viewer
    store: Store
    version: int
    frames: dict[str, pl.LazyFrame]
    _settings: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def __getitem__(self, entity: str) -> pl.LazyFrame:
        return self.frames[entity]

    def settings(self, group: type[SettingsT]) -> SettingsT:
        """The workspace's settings of the group ``group`` (a settings dataclass), read from the store once per rerun.

        A page script gets a new ``PageData`` on every run, and every page that saves settings reruns
        straight after, so a value read here is never older than the run that shows it.
        """
        if group not in self._settings:
            self._settings[group] = settings.load(self.store, group)
        return self._settings[group]


def page_data() -> PageData:
    """The current viewer, store and snapshot frames (loaded once per data version)."""
    store = current_store()
    version = store.data_version()
    frames = loaded_frames(store.workspace.home.as_posix(), version)
    return PageData(viewer=viewer(), store=store, version=version, frames=frames)


@st.cache_resource(max_entries=2, show_spinner="Loading the workspace snapshot ...")
def loaded_frames(home: str, version: int) -> dict[str, pl.LazyFrame]:
    """Every entity of the snapshot of ``version``, read into memory once and shared by all sessions."""
    snapshot = current_store().snapshot()
    return {name: frame.collect().lazy() for name, frame in snapshot.frames().items()}
