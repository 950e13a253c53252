"""``git log`` output, for teams with only a repository.

Produce the file in the repository's main branch with exactly this command::

    git log --first-parent --numstat --date=iso-strict \\
        --pretty=format:'%x1e%H%x1f%P%x1f%an%x1f%ae%x1f%aI%x1f%cI%x1f%s' > acme-web.gitlog

Each commit starts with a record separator (0x1E) and its fields are split by unit
separators (0x1F): hash, parent hashes, author name, author e-mail, author date, committer
date, subject; ``--numstat`` lines (``added<TAB>deleted<TAB>path``) follow. ``--first-parent``
keeps one entry per change that landed on the branch, with the whole diff of a merge.

Each entry becomes a merged pull request: ``Merge pull request #12 from org/branch`` and
squash-merge subjects ending in ``(#12)`` give the PR number and branch; a direct commit is
its own change (``repo@<short hash>``). The repository name is the ``repo`` option, else the
file name without its extension. Authors (by e-mail) are added as people when new.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from core.importing import values as v
from core.importing.formats.base import ROW, Format, Mapped, people_from, with_rows
from core.importing.options import ImportOptions
from core.importing.reading import RawTable

COMMAND = (
    "git log --first-parent --numstat --date=iso-strict "
    "--pretty=format:'%x1e%H%x1f%P%x1f%an%x1f%ae%x1f%aI%x1f%cI%x1f%s'"
)


def build(raw: RawTable, options: ImportOptions) -> Mapped:
    """One merged change (pull request) per first-parent commit, with its line counts."""
    repo = options.repo or Path(raw.filename).stem
    subject = pl.col("subject")
    merge_number = subject.str.extract(r"^Merge pull request #(\d+) from ", 1)
    squash_number = subject.str.extract(r"\(#(\d+)\)\s*$", 1)
    number = pl.coalesce(merge_number, squash_number)
    branch = subject.str.extract(r"^Merge pull request #\d+ from [^/\s]+/(\S+)", 1)
    agents = [a.casefold() for a in options.agent_logins]
    author = pl.col("author_email").str.to_lowercase()
    is_agent = (
        pl.col("author_name").str.ends_with("[bot]")
        | author.str.contains(r"\[bot\]@|noreply@anthropic\.com|bot@")
        | author.is_in(agents)
        | pl.col("author_name").str.to_lowercase().is_in(agents)
    ).fill_null(False)
    frame = with_rows(raw.frame).select(
        ROW,
        pl.when(number.is_not_null())
        .then(pl.concat_str([pl.lit(f"{repo}#"), number]))
        .otherwise(pl.concat_str([pl.lit(f"{repo}@"), pl.col("sha").str.slice(0, 12)]))
        .alias("pr_id"),
        pl.lit(repo).alias("repo"),
        number.alias("number"),
        subject.alias("title"),
        branch.alias("branch"),
        author.alias("author_id"),
        pl.col("author_name").alias("__name"),
        pl.when(is_agent).then(pl.lit("agent")).otherwise(pl.lit("human")).alias("author_kind"),
        v.work_item_key(subject, branch).alias("work_item_key"),
        pl.lit("merged").alias("state"),
        v.timestamp(pl.col("authored_at")).alias("created_at"),
        v.timestamp(pl.col("authored_at")).alias("first_commit_at"),
        v.timestamp(pl.col("committed_at")).alias("merged_at"),
        pl.col("additions"),
        pl.col("deletions"),
        pl.col("sha").alias("merge_commit_sha"),
    )
    people = people_from(frame, "author_id", "author_kind", "__name")
    return Mapped({"pull_requests": frame.drop("__name")}, fills={"people": people})


FORMAT = Format(
    name="git_log",
    label="git log (documented --pretty format with --numstat)",
    entities=("pull_requests", "people"),
    signature=("sha", "parents", "subject", "additions"),
    kinds=("gitlog",),
    build=build,
    mapping={
        "pull_requests": {
            "pr_id": "repo#PR number from the subject, else repo@short hash",
            "title": "subject",
            "author_id": "author e-mail",
            "created_at": "author date",
            "merged_at": "committer date",
            "additions": "numstat added lines",
            "deletions": "numstat deleted lines",
            "state": "'merged'",
        }
    },
)
