"""Provider aggregates: UUIDs in ``placement_aggregates``, created on first use."""

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import delete, literal_column, select, union_all
from sqlalchemy.ext.asyncio import AsyncConnection

from app.db import models
from app.db.database import RowMoved
from app.db.dialect import collation_key, insert_ignoring_duplicates

_agg = models.placement_aggregates
_rp_agg = models.resource_provider_aggregates


class AggregateRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    async def for_provider(self, provider_id: int) -> list[str]:
        """The aggregate UUIDs associated with the provider (as stored)."""
        rows = await self.conn.execute(
            select(_agg.c.uuid)
            .select_from(_agg.join(_rp_agg, _rp_agg.c.aggregate_id == _agg.c.id))
            .where(_rp_agg.c.resource_provider_id == provider_id)
            .order_by(_agg.c.id)
        )
        return [uuid for (uuid,) in rows]

    async def ids_by_uuid(self, uuids: Iterable[str]) -> dict[str, int]:
        """Internal ids of the aggregates that exist (unknown UUIDs are left out)."""
        wanted = [uuid for uuid in set(uuids) if "\x00" not in uuid]
        if not wanted:
            return {}
        rows = await self.conn.execute(
            select(_agg.c.uuid, _agg.c.id).where(_agg.c.uuid.in_(wanted))
        )
        return {uuid: id_ for uuid, id_ in rows}

    async def ensure(self, uuids: Iterable[str], now: datetime,
                     known: dict[str, int] | None = None) -> dict[str, int]:
        """Ids of the aggregates, creating the ones never seen before
        (``known``: what :meth:`ids_by_uuid` answered for them, if asked already)."""
        wanted = set(uuids)
        key = collation_key(self.conn)
        if known is None:
            known = await self.ids_by_uuid(wanted)
        stored = {key(uuid): id_ for uuid, id_ in known.items()}
        missing = {uuid for uuid in wanted if key(uuid) not in stored}
        if missing:
            await self.conn.execute(
                insert_ignoring_duplicates(self.conn, _agg),
                [{"uuid": uuid, "created_at": now} for uuid in sorted(missing)],
            )
            stored.update({key(uuid): id_
                           for uuid, id_ in (await self.ids_by_uuid(missing)).items()})
        if any(key(uuid) not in stored for uuid in missing):
            # Created by a writer that committed after this transaction's snapshot.
            raise RowMoved()
        return {uuid: stored[key(uuid)] for uuid in wanted}

    async def set_for_provider(
        self, provider_id: int, uuids: Iterable[str], now: datetime
    ) -> None:
        """Make the provider's aggregate set exactly ``uuids`` (new UUIDs are created)."""
        wanted = set(uuids)
        # The provider's aggregates and the wanted ones that exist: one round trip.
        held = (
            select(literal_column("0").label("known"), _agg.c.uuid, _agg.c.id)
            .select_from(_agg.join(_rp_agg, _rp_agg.c.aggregate_id == _agg.c.id))
            .where(_rp_agg.c.resource_provider_id == provider_id)
        )
        storable = [uuid for uuid in wanted if "\x00" not in uuid]
        query = held if not storable else union_all(
            held,
            select(literal_column("1").label("known"), _agg.c.uuid, _agg.c.id)
            .where(_agg.c.uuid.in_(storable)),
        )
        current: dict[str, int] = {}
        known: dict[str, int] = {}
        for is_known, uuid, id_ in await self.conn.execute(query):
            (known if is_known else current)[uuid] = id_
        stale = [id_ for uuid, id_ in current.items() if uuid not in wanted]
        if stale:
            await self.conn.execute(
                delete(_rp_agg).where(
                    _rp_agg.c.resource_provider_id == provider_id,
                    _rp_agg.c.aggregate_id.in_(stale),
                )
            )
        to_add = wanted - current.keys()
        if to_add:
            ids = await self.ensure(to_add, now, known)
            await self.conn.execute(
                insert_ignoring_duplicates(self.conn, _rp_agg),
                [
                    {"resource_provider_id": provider_id, "aggregate_id": ids[uuid],
                     "created_at": now}
                    for uuid in sorted(to_add)
                ],
            )
