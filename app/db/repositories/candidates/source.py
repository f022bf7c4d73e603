"""Where the candidate search reads from: the database (SQL) or a worker's snapshot.

Both answer the same calls with the same rows, so the search, the
combination and the rendering do not know which one they use.
"""

from collections.abc import Iterable, Sequence
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncConnection

from app.db.repositories.candidates import lookups, pairs, resolution, summaries
from app.db.repositories.candidates.shapes import AnchorFilter, GroupQuery, Sharing, Window

GroupRow = tuple[int, int, int, int, int | None, int | None]


class CandidateSource(Protocol):
    async def resolve(
        self, *, traits: Iterable[str], aggregates: Iterable[str], providers: Iterable[str]
    ) -> resolution.Resolved: ...

    async def any_root_matches(self, anchors: AnchorFilter) -> bool: ...

    async def any_provider_in_aggregates(self, member_of: list[list[int]]) -> bool: ...

    async def group_rows(
        self,
        groups: Sequence[GroupQuery],
        anchors: AnchorFilter,
        window: Window,
        sharing: Sharing,
    ) -> Sequence[GroupRow]: ...

    async def room_left(
        self, provider_ids: Iterable[int], rc_ids: Sequence[int]
    ) -> dict[tuple[int, int], int]: ...

    async def parents_in_trees(self, root_ids: Iterable[int]) -> dict[int, int | None]: ...

    async def summary_rows(
        self,
        ids: Iterable[int],
        *,
        whole_trees: bool,
        with_traits: bool = True,
        rc_ids: Sequence[int] | None = None,
    ) -> summaries.SummaryRows: ...

    async def provider_uuids(self, ids: Iterable[int]) -> dict[int, str]: ...


class SqlSource:
    """The candidate statements, run on one connection (one read transaction)."""

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    async def resolve(
        self, *, traits: Iterable[str], aggregates: Iterable[str], providers: Iterable[str]
    ) -> resolution.Resolved:
        return await resolution.resolve(
            self.conn, traits=traits, aggregates=aggregates, providers=providers
        )

    async def any_root_matches(self, anchors: AnchorFilter) -> bool:
        return await lookups.any_root_matches(self.conn, anchors)

    async def any_provider_in_aggregates(self, member_of: list[list[int]]) -> bool:
        return await lookups.any_provider_in_aggregates(self.conn, member_of)

    async def group_rows(
        self,
        groups: Sequence[GroupQuery],
        anchors: AnchorFilter,
        window: Window,
        sharing: Sharing,
    ) -> Sequence[GroupRow]:
        return await pairs.group_rows(self.conn, groups, anchors, window, sharing)

    async def room_left(
        self, provider_ids: Iterable[int], rc_ids: Sequence[int]
    ) -> dict[tuple[int, int], int]:
        return await lookups.room_left(self.conn, provider_ids, rc_ids)

    async def parents_in_trees(self, root_ids: Iterable[int]) -> dict[int, int | None]:
        return await lookups.parents_in_trees(self.conn, root_ids)

    async def summary_rows(
        self,
        ids: Iterable[int],
        *,
        whole_trees: bool,
        with_traits: bool = True,
        rc_ids: Sequence[int] | None = None,
    ) -> summaries.SummaryRows:
        return await summaries.summary_rows(
            self.conn, ids, whole_trees=whole_trees, with_traits=with_traits, rc_ids=rc_ids
        )

    async def provider_uuids(self, ids: Iterable[int]) -> dict[int, str]:
        return await summaries.provider_uuids(self.conn, ids)
