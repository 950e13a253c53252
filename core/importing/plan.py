"""Recognising an upload and planning its import: canonical frames per entity plus every problem found.

Nothing here writes. :func:`recognise` says what a file is and how its columns map;
:func:`plan_import` maps it and validates the result against the canonical schema and the
rows already stored, so the Data page can show problems before the user commits.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import TypeVar

import polars as pl

from core.costs import CostSettings
from core.importing.errors import ImportFailed
from core.importing.formats import FORMATS, ROW, Mapped, generic, llm
from core.importing.options import GenericMapping, ImportOptions
from core.importing.reading import RawTable, excel_sheets, is_panic, read_source
from core.model.schema import DATE_RANGE, ENTITIES, Problem, coerce, validate
from core.store import settings
from core.store.database import Store

T = TypeVar("T")
GENERIC = "generic"
PREVIEW_ROWS = 20


@dataclass(frozen=True)
class Recognition:
    """What a file is: its format (or ``generic``), how sure we are, and how its columns map."""

    filename: str
    format: str
    label: str
    confidence: float
    entities: tuple[str, ...]
    mapping: dict[str, dict[str, str]]
    """entity → canonical column → source column (or how the value is derived)."""
    preview: pl.DataFrame
    columns: tuple[str, ...]
    rows: int
    kind: str
    sheet: str | None = None
    sheets: tuple[str, ...] = ()
    encoding: str | None = None
    delimiter: str | None = None
    candidates: tuple[tuple[str, float], ...] = ()
    proposal: GenericMapping | None = None
    """For ``generic``: the guessed entity and column mapping to pre-fill the mapping screen."""


@dataclass
class ImportPlan:
    """Canonical frames ready to store, with every problem found and what will be skipped."""

    source: str
    format: str
    frames: dict[str, pl.DataFrame]
    fills: dict[str, pl.DataFrame] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    rejected: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    source_rows: int = 0
    skipped: int = 0

    @property
    def ok(self) -> bool:
        """True when no row has a problem."""
        return not self.problems

    @property
    def entities(self) -> list[str]:
        """The entities this plan writes, in model order."""
        return [e for e in ENTITIES if e in self.frames or e in self.fills]

    def rows(self, entity: str) -> int:
        """How many rows of ``entity`` the plan holds (before gaps-only rows are checked against the store)."""
        return sum(f.height for f in (self.frames.get(entity), self.fills.get(entity)) if f is not None)

    def preview(self, entity: str, n: int = PREVIEW_ROWS) -> pl.DataFrame:
        """The first ``n`` rows of ``entity`` as they will be stored."""
        frame = self.frames.get(entity, self.fills.get(entity))
        if frame is None:
            raise KeyError(entity)
        return coerce(entity, frame.drop(ROW, strict=False).head(n))


def recognise(
    source: Path | str | bytes,
    filename: str | None = None,
    *,
    sheet: str | None = None,
    options: ImportOptions | None = None,
) -> Recognition:
    """What ``source`` is: the best-fitting known format (or ``generic``) with its column mapping."""
    return _guarded(filename or _name_of(source), lambda: _recognise(source, filename, sheet, options))


def plan_import(
    source: Path | str | bytes,
    filename: str | None = None,
    *,
    format: str | None = None,
    entity: str | None = None,
    mapping: GenericMapping | None = None,
    options: ImportOptions | None = None,
    store: Store | None = None,
) -> ImportPlan:
    """The import of ``source`` mapped and validated; ``format`` defaults to the recognised one.

    ``format="generic"`` (or an unrecognised file) needs ``mapping`` — or ``entity``, in which
    case the columns are matched by name. With ``store`` the plan resolves metric names and
    checks references against the stored rows too.
    """
    return _guarded(
        filename or _name_of(source),
        lambda: _plan_import(source, filename, format, entity, mapping, options, store),
    )


def propose_mapping(
    source: Path | str | bytes,
    filename: str | None = None,
    *,
    entity: str,
    options: ImportOptions | None = None,
) -> GenericMapping:
    """The column mapping of ``source`` onto ``entity`` guessed from its column names (to pre-fill the screen)."""
    if entity not in ENTITIES:
        raise ImportFailed(f"`{entity}` is not an entity; choose one of {', '.join(ENTITIES)}.")
    options = options or ImportOptions()
    return _guarded(
        filename or _name_of(source),
        lambda: generic.propose(_read_best(source, filename, options.sheet, options), entity),
    )


def _recognise(
    source: Path | str | bytes,
    filename: str | None,
    sheet: str | None,
    options: ImportOptions | None,
) -> Recognition:
    options = options or ImportOptions()
    raw = _read_best(source, filename, sheet, options)
    scored = sorted(((f.score(raw), f) for f in FORMATS.values()), key=lambda s: -s[0])
    candidates = tuple((f.name, s) for s, f in scored if s > 0)
    base = dict(
        filename=raw.filename,
        preview=raw.frame.head(PREVIEW_ROWS),
        columns=tuple(raw.frame.columns),
        rows=raw.frame.height,
        kind=raw.kind,
        sheet=raw.sheet,
        sheets=raw.sheets,
        encoding=raw.encoding,
        delimiter=raw.delimiter,
        candidates=candidates,
    )
    if candidates:
        best = FORMATS[candidates[0][0]]
        return Recognition(
            format=best.name,
            label=best.label,
            confidence=candidates[0][1],
            entities=best.entities,
            mapping={e: dict(m) for e, m in best.mapping.items()},
            **base,
        )
    proposal = generic.propose(raw)
    return Recognition(
        format=GENERIC,
        label="Not recognised: map the columns",
        confidence=0.0,
        entities=(proposal.entity,),
        mapping={proposal.entity: dict(proposal.columns)},
        proposal=proposal,
        **base,
    )


def _plan_import(
    source: Path | str | bytes,
    filename: str | None,
    format: str | None,
    entity: str | None,
    mapping: GenericMapping | None,
    options: ImportOptions | None,
    store: Store | None,
) -> ImportPlan:
    options = _with_store_metrics(options or ImportOptions(), store)
    raw = _read_best(source, filename, options.sheet, options)
    chosen = format or _recognised_format(raw)
    if mapping is not None or entity is not None:
        chosen = GENERIC if format in (None, GENERIC) else chosen
    if chosen == GENERIC:
        if mapping is None:
            if entity is None:
                raise ImportFailed(
                    f"{raw.filename}: the format was not recognised; choose the entity and map its columns."
                )
            mapping = generic.propose(raw, entity)
        mapped = generic.build(raw, options, mapping)
    elif chosen in FORMATS:
        fmt = FORMATS[chosen]
        if fmt.score(raw) == 0.0:
            raise ImportFailed(
                f"{raw.filename}: does not look like {fmt.label} (expected columns: "
                f"{', '.join(fmt.signature) or 'a date column then metric columns'})."
            )
        mapped = fmt.build(raw, options)
    else:
        raise ImportFailed(f"`{chosen}` is not a known format; known formats: {', '.join([*FORMATS, GENERIC])}.")
    if chosen != GENERIC:
        mapped = _keys_of_known_projects(mapped, options, store)
        mapped = _teams_of_pull_requests(mapped, store)
        if store is not None:
            mapped = llm.reconcile_openai(mapped, chosen, store.read("cost_events"))
    mapped = _team_names_as_ids(mapped, store)
    mapped, money_problems = _in_workspace_currency(mapped, options, store, raw.filename)
    if entity is not None and chosen != GENERIC and entity not in mapped.frames:
        raise ImportFailed(
            f"{raw.filename}: the {chosen} format does not produce {entity}; it produces {', '.join(mapped.frames)}."
        )
    if entity is not None and chosen != GENERIC:
        mapped = Mapped({entity: mapped.frames[entity]}, fills=mapped.fills, notes=mapped.notes, skipped=mapped.skipped)
    plan = plan_frames(
        mapped, raw.filename, chosen, store=store, source_rows=raw.frame.height, date_range=options.date_range
    )
    return _with_problems(plan, money_problems)


def plan_frames(
    mapped: Mapped | Mapping[str, pl.DataFrame],
    source: str,
    format: str,
    *,
    store: Store | None = None,
    source_rows: int | None = None,
    date_range: tuple[date, date] = DATE_RANGE,
) -> ImportPlan:
    """A validated plan from frames already in canonical columns (used for database connections too)."""
    if not isinstance(mapped, Mapped):
        mapped = Mapped(
            {
                e: f if ROW in f.columns else f.with_row_index(ROW, offset=1).with_columns(pl.col(ROW).cast(pl.Int64))
                for e, f in mapped.items()
            }
        )
    unknown = [e for e in [*mapped.frames, *mapped.fills] if e not in ENTITIES]
    if unknown:
        raise ImportFailed(f"{source}: {', '.join(unknown)} is not an entity of the model.")
    frames = {e: f for e, f in mapped.frames.items()}
    fills = {
        e: f.join(frames[e].select(ENTITIES[e].key), on=list(ENTITIES[e].key), how="anti")
        if e in frames and all(k in frames[e].columns and k in f.columns for k in ENTITIES[e].key)
        else f
        for e, f in mapped.fills.items()
    }
    fills = {e: f for e, f in fills.items() if f.height}
    known = _known_keys(frames, fills, store)
    problems: list[Problem] = []
    rejected: dict[str, int] = {}
    for group in (fills, frames):
        for entity, frame in group.items():
            found = _validate(entity, frame, known, source, date_range)
            problems.extend(found)
            bad_rows = {p.row for p in found if p.row is not None}
            if any(p.row is None for p in found):
                bad_rows = set(frame[ROW].to_list())
            rejected[entity] = rejected.get(entity, 0) + len(bad_rows)
    rows = source_rows if source_rows is not None else max((f.height for f in frames.values()), default=0)
    return ImportPlan(
        source=source,
        format=format,
        frames=frames,
        fills=fills,
        problems=sorted(problems, key=lambda p: (p.row or 0, p.entity, p.column)),
        rejected={e: n for e, n in rejected.items() if n},
        notes=list(mapped.notes),
        source_rows=rows,
        skipped=mapped.skipped,
    )


_PROJECT_OF_KEY = r"^([A-Za-z][A-Za-z0-9_]*)-\d+$"


def _keys_of_known_projects(mapped: Mapped, options: ImportOptions, store: Store | None) -> Mapped:
    """Work-item keys read from branches and titles kept only when their prefix is a known project.

    Known projects are the prefixes of imported work items (stored or in this file) and the setting
    ``import.work_item_projects``; ``patch-1`` or ``add-code-of-conduct-1`` name no project.
    """
    targets = [e for e in ("pull_requests", "cost_events") if "work_item_key" in mapped.frames.get(e, pl.DataFrame())]
    if not targets:
        return mapped
    keys = (
        [mapped.frames["work_items"]["work_item_key"]] if "work_item_key" in mapped.frames.get("work_items", {}) else []
    )
    if store is not None:
        keys.append(store.read("work_items")["work_item_key"])
    known = set(options.work_item_projects)
    for series in keys:
        known |= set(series.cast(pl.String).str.extract(_PROJECT_OF_KEY, 1).str.to_uppercase().drop_nulls())
    frames, unknown = dict(mapped.frames), set()
    for entity in targets:
        frame = frames[entity]
        prefix = pl.col("work_item_key").str.extract(_PROJECT_OF_KEY, 1).str.to_uppercase()
        unknown |= set(frame.filter(~prefix.is_in(sorted(known)))["work_item_key"].drop_nulls())
        frames[entity] = frame.with_columns(
            pl.when(prefix.is_in(sorted(known))).then("work_item_key").alias("work_item_key")
        )
    if not unknown:
        return replace(mapped, frames=frames)
    shown = ", ".join(sorted(unknown)[:5]) + (" …" if len(unknown) > 5 else "")
    note = (
        f"{len(unknown)} work-item key(s) read from branch names or titles were not kept ({shown}): their prefix is "
        "not a known project. Projects are known from imported work items or the setting `import.work_item_projects`."
    )
    return replace(mapped, frames=frames, notes=(*mapped.notes, note))


def _teams_of_pull_requests(mapped: Mapped, store: Store | None) -> Mapped:
    """Pull requests with a team: their author's, else their work item's feature's, else the file's (a namespace)."""
    prs = mapped.frames.get("pull_requests")
    if prs is None or prs.is_empty() or "author_id" not in prs.columns:
        return mapped

    def rows(entity: str, columns: tuple[str, ...]) -> pl.DataFrame:
        parts = [f for f in (mapped.frames.get(entity), mapped.fills.get(entity)) if f is not None]
        if store is not None:
            parts.append(store.read(entity))
        schema = {c: pl.String for c in columns}
        cast = [
            f.select(pl.col(c).cast(pl.String) if c in f.columns else pl.lit(None, pl.String).alias(c) for c in columns)
            for f in parts
        ]
        return pl.concat([pl.DataFrame(schema=schema), *cast]).unique(columns[0], keep="first", maintain_order=True)

    authors = rows("people", ("person_id", "team_id")).rename({"person_id": "author_id", "team_id": "__author_team"})
    features = rows("features", ("feature_id", "team_id")).rename({"team_id": "__feature_team"})
    items = (
        rows("work_items", ("work_item_key", "feature_id", "team_id"))
        .join(features, on="feature_id", how="left")
        .select("work_item_key", pl.coalesce("__feature_team", "team_id").alias("__item_team"))
    )
    own = pl.col("team_id") if "team_id" in prs.columns else pl.lit(None, pl.String)
    with_keys = (
        prs if "work_item_key" in prs.columns else prs.with_columns(pl.lit(None, pl.String).alias("work_item_key"))
    )
    teamed = (
        with_keys.join(authors, on="author_id", how="left", maintain_order="left")
        .join(items, on="work_item_key", how="left", maintain_order="left")
        .with_columns(pl.coalesce("__author_team", "__item_team", own).alias("team_id"))
        .drop("__author_team", "__item_team")
    )
    return replace(
        mapped,
        frames={
            **mapped.frames,
            "pull_requests": teamed.select(*prs.columns, *([] if "team_id" in prs.columns else ["team_id"])),
        },
    )


def _team_names_as_ids(mapped: Mapped, store: Store | None) -> Mapped:
    """``team_id`` cells that spell a stored team's name (case-blind) rather than its id, as that id."""
    if store is None or not any("team_id" in f.columns for f in mapped.frames.values()):
        return mapped
    teams = store.read("teams")
    ids = set(teams["team_id"])
    names = {str(n).casefold(): t for t, n in teams.select("team_id", "name").rows() if n}
    if not names:
        return mapped
    lookup = pl.col("team_id").cast(pl.String).str.strip_chars().str.to_lowercase()
    frames = {
        e: f.with_columns(
            pl.when(~pl.col("team_id").cast(pl.String).is_in(sorted(ids)))
            .then(lookup.replace_strict(names, default=pl.col("team_id").cast(pl.String), return_dtype=pl.String))
            .otherwise(pl.col("team_id").cast(pl.String))
            .alias("team_id")
        )
        if "team_id" in f.columns
        else f
        for e, f in mapped.frames.items()
    }
    return replace(mapped, frames=frames)


def _in_workspace_currency(
    mapped: Mapped, options: ImportOptions, store: Store | None, filename: str
) -> tuple[Mapped, list[Problem]]:
    """Cost events in the workspace currency: converted at a set rate, else refused naming the row and value."""
    events = mapped.frames.get("cost_events")
    if events is None or events.is_empty() or "amount" not in events.columns:
        return mapped, []
    home = (options.currency or (settings.load(store, CostSettings).currency if store else None) or "USD").upper()
    if "currency" not in events.columns:
        events = events.with_columns(pl.lit(None, pl.String).alias("currency"))
    written = pl.col("currency").cast(pl.String).str.strip_chars()
    code = pl.when(written != "").then(written.str.to_uppercase())
    amount = pl.col("amount").cast(pl.String).str.strip_chars()
    has_amount = amount.is_not_null() & (amount != "")
    rates = {k.upper(): float(r) for k, r in options.currency_rates.items()}
    rate = code.replace_strict(rates, default=None, return_dtype=pl.Float64)
    foreign = has_amount & code.is_not_null() & (code != home)
    refused = events.filter(foreign & rate.is_null()).select(ROW, written.alias("__value"))
    problems = [
        Problem(
            "cost_events",
            row,
            "currency",
            value,
            f"is not the workspace currency {home}; set its rate to {home} in the import settings "
            "(`import.currency_rates`) to convert it",
            filename,
        )
        for row, value in refused.head(1000).rows()
    ]
    converting = foreign & rate.is_not_null() & amount.cast(pl.Float64, strict=False).is_not_null()
    converted = events.filter(converting).select(code.alias("c")).group_by("c").len().sort("c").rows()
    events = events.with_columns(
        pl.when(converting)
        .then((amount.cast(pl.Float64, strict=False) * rate).cast(pl.String))
        .otherwise(pl.col("amount"))
        .alias("amount"),
        pl.when(has_amount & (code.is_null() | converting)).then(pl.lit(home)).otherwise(written).alias("currency"),
    )
    notes = [
        f"{n} amount(s) in {c} converted to {home} at the set rate {rates[c]:g} {home} per {c}." for c, n in converted
    ]
    return replace(mapped, frames={**mapped.frames, "cost_events": events}, notes=(*mapped.notes, *notes)), problems


def _with_problems(plan: ImportPlan, problems: list[Problem]) -> ImportPlan:
    """``plan`` with further ``problems`` found outside the schema's checks counted as rejected rows."""
    if not problems:
        return plan
    for entity in {p.entity for p in problems}:
        before = {p.row for p in plan.problems if p.entity == entity}
        added = {p.row for p in problems if p.entity == entity} - before
        plan.rejected[entity] = plan.rejected.get(entity, 0) + len(added)
    plan.problems = sorted([*plan.problems, *problems], key=lambda p: (p.row or 0, p.entity, p.column))
    return plan


def _guarded(name: str, work: Callable[[], T]) -> T:
    """Run ``work``; anything but ``ImportFailed`` becomes ``ImportFailed`` naming the file."""
    try:
        return work()
    except ImportFailed:
        raise
    except Exception as error:
        raise ImportFailed(f"{name}: could not be mapped ({_detail(error)}).") from None
    except BaseException as error:
        if not is_panic(error):
            raise
        raise ImportFailed(f"{name}: could not be mapped (the reader failed: {_detail(error)}).") from None


def _detail(error: BaseException) -> str:
    return str(error).strip().splitlines()[0][:200] if str(error).strip() else type(error).__name__


def _name_of(source: Path | str | bytes) -> str:
    return "upload" if isinstance(source, bytes) else Path(source).name


def without_rejected(plan: ImportPlan) -> ImportPlan:
    """``plan`` with every row that has a problem left out (those rows are counted as rejected)."""
    bad: dict[str, set[int]] = {}
    for p in plan.problems:
        if p.row is not None:
            bad.setdefault(p.entity, set()).add(p.row)
    whole = {p.entity for p in plan.problems if p.row is None}

    def keep(entity: str, frame: pl.DataFrame) -> pl.DataFrame:
        if entity in whole:
            return frame.clear()
        return frame.filter(~pl.col(ROW).is_in(list(bad.get(entity, ()))))

    return replace(
        plan,
        frames={e: keep(e, f) for e, f in plan.frames.items()},
        fills={e: keep(e, f) for e, f in plan.fills.items()},
        problems=[],
    )


def _validate(
    entity: str, frame: pl.DataFrame, known: dict[str, pl.DataFrame], source: str, date_range: tuple[date, date]
) -> list[Problem]:
    rows = frame[ROW].to_list() if ROW in frame.columns else list(range(1, frame.height + 1))
    found = validate(entity, frame.drop(ROW, strict=False), known, source, date_range)
    return [replace(p, row=rows[p.row - 1] if p.row is not None and 0 < p.row <= len(rows) else p.row) for p in found]


def _known_keys(
    frames: Mapping[str, pl.DataFrame], fills: Mapping[str, pl.DataFrame], store: Store | None
) -> dict[str, pl.DataFrame]:
    needed = {c.references[0] for e in [*frames, *fills] for c in ENTITIES[e].columns if c.references}
    known: dict[str, pl.DataFrame] = {}
    for name in needed:
        key = ENTITIES[name].key[0]
        parts = [
            f.select(pl.col(key).cast(pl.String))
            for f in (frames.get(name), fills.get(name))
            if f is not None and key in f.columns
        ]
        if store is not None:
            parts.append(store.read(name).select(pl.col(key).cast(pl.String)))
        if parts or store is not None:
            known[name] = pl.concat(parts) if parts else pl.DataFrame(schema={key: pl.String})
    return known


def _read_best(source: Path | str | bytes, filename: str | None, sheet: str | None, options: ImportOptions) -> RawTable:
    raw = read_source(source, filename, sheet=sheet, max_bytes=options.max_bytes)
    if raw.kind != "excel" or sheet is not None or len(raw.sheets) < 2:
        return raw
    best, best_score = raw, max((f.score(raw) for f in FORMATS.values()), default=0.0)
    for name in excel_sheets(source, filename, options.max_bytes)[1:]:
        try:
            other = read_source(source, filename, sheet=name, max_bytes=options.max_bytes)
        except ImportFailed:
            continue
        score = max((f.score(other) for f in FORMATS.values()), default=0.0)
        if score > best_score:
            best, best_score = other, score
    return best


def _recognised_format(raw: RawTable) -> str:
    scored = sorted(((f.score(raw), f.name) for f in FORMATS.values()), reverse=True)
    return scored[0][1] if scored and scored[0][0] > 0 else GENERIC


def _with_store_metrics(options: ImportOptions, store: Store | None) -> ImportOptions:
    if store is None or options.metric_ids:
        return options
    metrics = store.read("metrics").select("metric_id", "name")
    lookup = {name.lower(): mid for mid, name in metrics.rows() if name} | {
        mid.lower(): mid for mid, _ in metrics.rows()
    }
    return replace(options, metric_ids=lookup)
