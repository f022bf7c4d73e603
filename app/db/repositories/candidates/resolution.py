"""Every name of a request resolved to an id, in one round trip.

Also brings what the search needs up front: the sharing providers (usually
none) with their traits, and the highest provider id (for anchor windows).
"""

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, Integer, String, cast, func, literal_column, select, union_all
from sqlalchemy.ext.asyncio import AsyncConnection

from app.db import models
from app.db.dialect import in_list_parameter, list_parameter
from app.db.repositories.candidates.shapes import Sharing
from app.db.repositories.candidates.statements import cached, fetch_all

_rp = models.resource_providers
_rpt = models.resource_provider_traits
_agg = models.placement_aggregates
_traits = models.traits
_rc = models.resource_classes

SHARING_TRAIT = "MISC_SHARES_VIA_AGGREGATE"


@dataclass
class Resolved:
    """Every name of a request, resolved in one round trip."""

    class_ids: dict[str, int] = field(default_factory=dict)  # every class
    class_names: dict[int, str] = field(default_factory=dict)
    trait_ids: dict[str, int] = field(default_factory=dict)  # the named ones that exist
    aggregate_ids: dict[str, int] = field(default_factory=dict)
    provider_roots: dict[str, int] = field(default_factory=dict)  # provider uuid -> root id
    sharing: Sharing = field(default_factory=Sharing)
    max_provider_id: int = 0


def _resolve_statement(dialect: str) -> Any:
    """(kind, key, id, extra) rows: c = class, t = trait, a = aggregate, p = provider
    (extra: its root), s = a trait of a sharing provider (id: provider), m = max id."""

    def row(kind: str, key: Any, id_: Any, extra: Any) -> list[Any]:
        return [
            literal_column(f"'{kind}'", String).label("kind"),
            cast(key, String).label("key"),
            cast(id_, Integer).label("id"),
            cast(extra, Integer).label("extra"),
        ]

    none: ColumnElement[Any] = literal_column("NULL")
    marked = _rpt.alias()
    shared = _rpt.alias()
    sharing_trait = _traits.alias()
    return union_all(
        select(*row("c", _rc.c.name, _rc.c.id, none)),
        select(*row("t", _traits.c.name, _traits.c.id, none)).where(
            in_list_parameter(dialect, _traits.c.name, "traits", String)
        ),
        select(*row("a", _agg.c.uuid, _agg.c.id, none)).where(
            in_list_parameter(dialect, _agg.c.uuid, "aggregates", String)
        ),
        select(*row("p", _rp.c.uuid, _rp.c.id, _rp.c.root_provider_id)).where(
            in_list_parameter(dialect, _rp.c.uuid, "providers", String)
        ),
        select(*row("s", none, shared.c.resource_provider_id, shared.c.trait_id)).where(
            shared.c.resource_provider_id.in_(
                select(marked.c.resource_provider_id)
                .select_from(
                    marked.join(sharing_trait, sharing_trait.c.id == marked.c.trait_id)
                )
                .where(sharing_trait.c.name == SHARING_TRAIT)
            )
        ),
        select(*row("m", none, func.max(_rp.c.id), none)),
    )


async def resolve(
    conn: AsyncConnection,
    *,
    traits: Iterable[str],
    aggregates: Iterable[str],
    providers: Iterable[str],
) -> Resolved:
    dialect = conn.dialect.name
    statement = cached(("resolve", dialect), lambda: _resolve_statement(dialect))
    params = {
        "traits": list_parameter(dialect, traits),
        "aggregates": list_parameter(dialect, aggregates),
        "providers": list_parameter(dialect, providers),
    }
    out = Resolved()
    sharing: set[int] = set()
    for kind, key, id_, extra in await fetch_all(conn, statement, params):
        if kind == "c":
            out.class_ids[key] = id_
            out.class_names[id_] = key
        elif kind == "t":
            out.trait_ids[key] = id_
        elif kind == "a":
            out.aggregate_ids[key] = id_
        elif kind == "p":
            out.provider_roots[key] = extra
        elif kind == "s":
            sharing.add(id_)
            out.sharing.traits.add(extra)
        else:
            out.max_provider_id = id_ or 0
    out.sharing.ids = sorted(sharing)
    return out
