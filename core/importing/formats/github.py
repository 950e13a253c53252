"""GitHub pull requests: the REST list endpoint and ``gh pr list --json``.

REST: ``GET /repos/{owner}/{repo}/pulls?state=all&per_page=100`` returns a JSON array of pull
request objects (``number``, ``title``, ``state`` open/closed, ``user.login``, ``user.type``,
``created_at``, ``merged_at``, ``head.ref``, ``base.repo.full_name``, ``merge_commit_sha`` ...;
``additions``/``deletions`` only appear on the single-PR endpoint and are read when present).

gh: ``gh pr list --state all --limit 1000 --json
number,title,author,createdAt,mergedAt,closedAt,state,additions,deletions,headRefName,url,reviews``
returns ``author`` as ``{login, is_bot, name}`` and ``state`` as OPEN/CLOSED/MERGED; the
repository is read from ``url``.

An author is an agent when GitHub marks it a bot (``user.type == "Bot"``, ``is_bot``), its
login ends in ``[bot]`` or starts with ``app/``, or it is in the ``import.agent_logins`` list.
The first work-item key in the title, else in the branch name, becomes ``work_item_key``.
"""

from __future__ import annotations

import polars as pl

from core.importing import values as v
from core.importing.formats.base import ROW, Columns, Format, Mapped, people_from, with_rows
from core.importing.options import ImportOptions
from core.importing.reading import RawTable

_REPO_FROM_URL = r"https?://[^/]+/([^/]+/[^/]+)/pull/"


def build_rest(raw: RawTable, options: ImportOptions) -> Mapped:
    """Pull requests (and their authors) from the REST API's JSON array."""
    c = Columns(raw.frame)
    repo = pl.coalesce(
        v.text(c("base.repo.full_name")), c("html_url").str.extract(_REPO_FROM_URL, 1), pl.lit(options.repo)
    )
    merged_at = v.text(c("merged_at"))
    state = pl.when(merged_at.is_not_null()).then(pl.lit("merged")).otherwise(v.text(c("state")).str.to_lowercase())
    bot = v.text(c("user.type")).str.to_lowercase() == "bot"
    return _pull_requests(
        raw,
        options,
        repo,
        c("number"),
        c("title"),
        c("head.ref"),
        c("user.login"),
        bot,
        state,
        c("created_at"),
        merged_at,
        c("merge_commit_sha"),
        c("additions"),
        c("deletions"),
        None,
    )


def build_gh(raw: RawTable, options: ImportOptions) -> Mapped:
    """Pull requests (and their authors) from ``gh pr list --json`` output."""
    c = Columns(raw.frame)
    repo = pl.coalesce(c("url").str.extract(_REPO_FROM_URL, 1), pl.lit(options.repo))
    state = v.text(c("state")).str.to_lowercase()
    bot = v.text(c("author.is_bot")).str.to_lowercase() == "true"
    reviews = c("reviews").str.count_matches('"submittedAt"').cast(pl.String) if "reviews" in c else None
    first_review = (
        c("reviews")
        .str.extract_all(r'"submittedAt"\s*:\s*"([^"]+)"')
        .list.eval(pl.element().str.extract(r'"([^"]+)"$', 1))
        .list.min()
        if "reviews" in c
        else None
    )
    return _pull_requests(
        raw,
        options,
        repo,
        c("number"),
        c("title"),
        c("headRefName"),
        c("author.login"),
        bot,
        state,
        c("createdAt"),
        c("mergedAt"),
        c("mergeCommit.oid"),
        c("additions"),
        c("deletions"),
        reviews,
        first_review,
    )


def _pull_requests(
    raw: RawTable,
    options: ImportOptions,
    repo: pl.Expr,
    number: pl.Expr,
    title: pl.Expr,
    branch: pl.Expr,
    login: pl.Expr,
    bot: pl.Expr,
    state: pl.Expr,
    created: pl.Expr,
    merged: pl.Expr,
    sha: pl.Expr,
    additions: pl.Expr,
    deletions: pl.Expr,
    reviews: pl.Expr | None,
    first_review: pl.Expr | None = None,
) -> Mapped:
    agents = [a.casefold() for a in options.agent_logins]
    author = v.text(login)
    is_agent = (
        bot.fill_null(False)
        | author.str.ends_with("[bot]").fill_null(False)
        | author.str.starts_with("app/").fill_null(False)
        | author.str.to_lowercase().is_in(agents).fill_null(False)
    )
    merged_text = v.text(merged)
    frame = with_rows(raw.frame).select(
        ROW,
        pl.concat_str([repo, pl.lit("#"), v.text(number)]).alias("pr_id"),
        repo.alias("repo"),
        v.number(number).alias("number"),
        v.text(title).alias("title"),
        v.text(branch).alias("branch"),
        author.alias("author_id"),
        pl.when(is_agent).then(pl.lit("agent")).otherwise(pl.lit("human")).alias("author_kind"),
        v.work_item_key(v.text(title), v.text(branch)).alias("work_item_key"),
        state.alias("state"),
        v.timestamp(created, options.timezone).alias("created_at"),
        v.timestamp(merged_text, options.timezone).alias("merged_at"),
        pl.when(merged_text.is_not_null()).then(v.text(sha)).alias("merge_commit_sha"),
        v.number(additions).alias("additions"),
        v.number(deletions).alias("deletions"),
        *([reviews.alias("reviews")] if reviews is not None else []),
        *([v.timestamp(first_review, options.timezone).alias("first_review_at")] if first_review is not None else []),
    )
    people = people_from(frame, "author_id", "author_kind")
    return Mapped({"pull_requests": frame}, fills={"people": people})


_PR_MAPPING = {
    "pull_requests": {
        "pr_id": "repository + '#' + number",
        "work_item_key": "first key (PAY-123) in title, else branch",
        "author_kind": "agent for bots, [bot] logins and the agent list",
        "state": "merged when merged, else open/closed",
    },
    "people": {"person_id": "author login (added only when new)"},
}

REST = Format(
    name="github_pulls_rest",
    label="GitHub pull requests (REST API JSON)",
    entities=("pull_requests", "people"),
    signature=("number", "state", "created_at", "user.login"),
    hints=("merged_at", "head.ref", "base.repo.full_name", "html_url", "merge_commit_sha"),
    kinds=("json",),
    build=build_rest,
    mapping={
        **_PR_MAPPING,
        "pull_requests": {
            **_PR_MAPPING["pull_requests"],
            "repo": "base.repo.full_name",
            "number": "number",
            "title": "title",
            "branch": "head.ref",
            "author_id": "user.login",
            "created_at": "created_at",
            "merged_at": "merged_at",
        },
    },
    excludes=("iid",),
)

GH_CLI = Format(
    name="github_pulls_gh",
    label="GitHub pull requests (gh pr list --json)",
    entities=("pull_requests", "people"),
    signature=("number", "createdAt", "author.login"),
    hints=("mergedAt", "headRefName", "url", "state", "additions", "deletions", "reviews"),
    kinds=("json",),
    build=build_gh,
    mapping={
        **_PR_MAPPING,
        "pull_requests": {
            **_PR_MAPPING["pull_requests"],
            "repo": "url",
            "number": "number",
            "title": "title",
            "branch": "headRefName",
            "author_id": "author.login",
            "created_at": "createdAt",
            "merged_at": "mergedAt",
            "additions": "additions",
            "deletions": "deletions",
            "reviews": "count of reviews",
        },
    },
)
