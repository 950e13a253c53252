"""Bringing data in: read an upload, recognise its format, map it onto the canonical model, store it.

The Data page and the CLI use this API::

    rec = recognise(path_or_bytes, filename)          # format, confidence, mapping, preview
    plan = plan_import(path_or_bytes, filename, store=store)   # frames per entity + problems
    record = run_import(store, plan, actor, progress)  # one atomic write, recorded in history
    undo_import(store, record.import_id, actor)
    import_history(store)                              # one row per import and entity

Every failure a user can cause raises :class:`ImportFailed` with a message naming the file,
row, column, value and what was expected.
"""

from core.importing.errors import ImportFailed
from core.importing.formats import FORMATS
from core.importing.history import ImportRecord, import_history, run_import, undo_import
from core.importing.options import GenericMapping, ImportOptions, ModelPrice, import_options, options_from_settings
from core.importing.plan import (
    GENERIC,
    ImportPlan,
    Recognition,
    plan_frames,
    plan_import,
    propose_mapping,
    recognise,
    without_rejected,
)
from core.importing.reading import DEFAULT_MAX_BYTES, excel_sheets, read_source

__all__ = [
    "DEFAULT_MAX_BYTES",
    "FORMATS",
    "GENERIC",
    "GenericMapping",
    "ImportFailed",
    "ImportOptions",
    "ImportPlan",
    "ImportRecord",
    "ModelPrice",
    "Recognition",
    "excel_sheets",
    "import_history",
    "import_options",
    "options_from_settings",
    "plan_frames",
    "plan_import",
    "propose_mapping",
    "read_source",
    "recognise",
    "run_import",
    "undo_import",
    "without_rejected",
]
