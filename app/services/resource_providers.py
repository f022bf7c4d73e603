"""Resource providers: the filtered listing, create, rename/re-parent, delete.

Each operation is one unit of work whose checks run in the reference's order
(its error texts are in the catalogue, resource providers section).
"""

import uuid as uuidlib
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from app.db.database import Database
from app.db.repositories import provider_setup
from app.db.repositories.providers_core import find_provider
from app.db.repositories.resource_classes import require_class_ids
from app.db.repositories.resource_providers import (
    NoSuchTraits,
    ProviderFilters,
    ResourceProviderRepository,
    trait_filter_ids,
)
from app.exceptions import (
    InvalidResourcesParameter,
    NewParentProviderNotFound,
    ParentProviderNotFound,
    PlacementError,
    ProviderHasAllocations,
    ProviderHasChildren,
    ProviderNameExists,
    ProviderNameRequired,
    ProviderOwnParent,
    ProviderRenameConflict,
    ProviderToDeleteNotFound,
    ProviderTreeLoop,
    ProviderUuidExists,
    ReparentingNotAllowed,
    UnknownRequiredTraits,
    UnknownResourceClass,
    UnparentingNotAllowed,
    judged,
)
from app.microversion import REPARENT_PROVIDERS, Version
from app.query import AggregateFilter, TraitFilter
from app.records import ProviderRow as ProviderRow
from app.services.lookups import require_provider


@dataclass
class ProviderQuery:
    """``GET /resource_providers`` as parsed from the query string (names, not ids)."""

    name: str | None = None
    uuid: str | None = None
    in_tree: str | None = None
    member_of: AggregateFilter = field(default_factory=AggregateFilter)
    required: TraitFilter = field(default_factory=TraitFilter)
    resources: dict[str, int] = field(default_factory=dict)  # class name -> amount


@dataclass(frozen=True)
class ProviderChange:
    """``PUT /resource_providers/{uuid}``: the name, and the parent if one was given."""

    name: str
    # False: the parent stays (the body had no parent_provider_uuid, or is < 1.14).
    parent_given: bool = False
    parent_uuid: str | None = None


@dataclass(frozen=True)
class UpdatedProvider:
    provider: ProviderRow
    # updated_at before this change (the reference answers it as Last-Modified).
    previous_update: datetime | None


async def list_providers(db: Database, query: ProviderQuery) -> list[ProviderRow]:
    """Providers matching every filter, by id; unknown traits or classes are a 400."""

    async def read(conn: AsyncConnection) -> list[ProviderRow]:
        filters = ProviderFilters(
            name=query.name, uuid=query.uuid, in_tree=query.in_tree, aggregates=query.member_of
        )
        try:
            filters.required_traits, filters.forbidden_traits = await trait_filter_ids(
                conn, query.required
            )
        except NoSuchTraits as exc:
            raise UnknownRequiredTraits(names=", ".join(exc.names)) from None
        try:
            class_ids = await require_class_ids(conn, query.resources)
        except UnknownResourceClass as exc:
            raise InvalidResourcesParameter(reason=exc.message) from None
        filters.resources = {class_ids[name]: amount for name, amount in query.resources.items()}
        return await ResourceProviderRepository(conn).filtered(filters)

    return await db.read(read)


async def resource_provider(db: Database, uuid: str) -> ProviderRow:
    """The provider with exactly this uuid (404 if none)."""
    return await db.read(lambda conn: require_provider(conn, uuid))


async def create_provider(
    db: Database, name: str, uuid: str | None, parent_uuid: str | None, now: datetime
) -> ProviderRow:
    """A new provider (generation 0), a random uuid unless one is given.

    Order of checks: name given, parent not itself, parent exists (400), uuid
    free, name free (409).
    """
    new_uuid = uuid if uuid is not None else str(uuidlib.uuid4())

    async def write(conn: AsyncConnection) -> ProviderRow:
        if not name:
            raise ProviderNameRequired(name=name, uuid=new_uuid)
        parent: ProviderRow | None = None
        if parent_uuid is not None:
            if parent_uuid == new_uuid:
                raise ProviderOwnParent(name=name, uuid=new_uuid)
            parent = await find_provider(conn, parent_uuid)
            if parent is None:
                raise ParentProviderNotFound(name=name, uuid=new_uuid)
        repo = ResourceProviderRepository(conn)
        uuid_taken, name_taken = await repo.uuid_or_name_taken(new_uuid, name)
        if uuid_taken:
            raise ProviderUuidExists(uuid=new_uuid)
        if name_taken:
            raise ProviderNameExists(name=name)
        return await repo.insert(name, new_uuid, parent, now)

    if name and parent_uuid != new_uuid:
        created = await provider_setup.create_provider(db, name, new_uuid, parent_uuid, now)
        if created is not None:
            return created
    # Correct under READ COMMITTED: the uuid and name are unique keys (a
    # concurrent creator of either makes the insert fail, retried, and the
    # retry answers the 409), and the parent is a foreign key (a parent deleted
    # meanwhile fails the insert or the delete). SERIALIZABLE made concurrent
    # creators of distinct providers abort each other through shared index pages.
    return await db.write(write, keyed=True)


async def update_provider(
    db: Database,
    uuid: str,
    change: ProviderChange | PlacementError,
    *,
    version: Version,
    now: datetime,
) -> UpdatedProvider:
    """Rename; at 1.14+ also set the parent (re-/un-parent from 1.37).

    ``change`` may be the error judging the body: the provider is looked up
    first (a missing provider is a 404 even with a bad body). The generation
    is left alone. When the root changes, the provider and every descendant
    move to the new root.
    """

    async def write(conn: AsyncConnection) -> UpdatedProvider:
        current = await require_provider(conn, uuid)
        wanted = judged(change)
        repo = ResourceProviderRepository(conn)
        parent_id = current.parent_provider_id
        root_id = current.root_provider_id or current.id
        if wanted.parent_given:
            new_parent = await _new_parent(
                conn, repo, uuid, current, wanted.parent_uuid, version >= REPARENT_PROVIDERS
            )
            if new_parent is not None:
                parent_id = new_parent.id
                root_id = new_parent.root_provider_id or new_parent.id
            else:
                parent_id = None
                root_id = current.id
        name = wanted.name
        if name != current.name and await repo.name_taken(name, other_than=current.id):
            raise ProviderRenameConflict(name=name)
        if root_id != (current.root_provider_id or current.id):
            await repo.move_to_root(await repo.subtree_ids(current), root_id, now)
        if not await repo.save(current, name=name, parent_id=parent_id, now=now):
            return UpdatedProvider(current, current.updated_at)
        return UpdatedProvider(await require_provider(conn, uuid), current.updated_at)

    return await db.write(write)


async def _new_parent(
    conn: AsyncConnection,
    repo: ResourceProviderRepository,
    uuid: str,
    current: ProviderRow,
    parent_uuid: str | None,
    may_reparent: bool,
) -> ProviderRow | None:
    """The parent named by an update (None: no parent), checked against the rules.

    A provider that has a parent keeps it below 1.37; it must never end up
    below one of its own descendants.
    """
    new_parent: ProviderRow | None = None
    if parent_uuid is not None:
        new_parent = await find_provider(conn, parent_uuid)
        if new_parent is None:
            raise NewParentProviderNotFound(uuid=uuid)
    new_parent_id = new_parent.id if new_parent is not None else None
    if current.parent_provider_id is not None and not may_reparent:
        if new_parent_id is None:
            raise UnparentingNotAllowed(uuid=uuid)
        if new_parent_id != current.parent_provider_id:
            raise ReparentingNotAllowed(uuid=uuid)
    if (
        new_parent is not None
        and new_parent.id != current.parent_provider_id
        and new_parent.id in await repo.subtree_ids(current)
    ):
        raise ProviderTreeLoop(uuid=uuid)
    return new_parent


async def delete_provider(db: Database, uuid: str) -> None:
    """Delete a childless provider without allocations, with its associations."""

    async def write(conn: AsyncConnection) -> None:
        current = await require_provider(conn, uuid, missing=ProviderToDeleteNotFound(uuid=uuid))
        repo = ResourceProviderRepository(conn)
        if await repo.has_children(current.id):
            raise ProviderHasChildren(uuid=uuid)
        if await repo.has_allocations(current.id):
            raise ProviderHasAllocations(uuid=uuid)
        await repo.delete(current.id)

    await db.write(write)
