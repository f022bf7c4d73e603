"""Request groups with resolved ids, and the *shape* of a group's statement.

A shape says what a group's statement looks like (how many classes, trait
sets, aggregate sets, which filters are present...): it is the key of the
statement cache. The values (ids, amounts, window bounds) travel separately,
as bind parameters (:func:`params_of`).
"""

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from app.db.dialect import list_parameter


@dataclass
class GroupQuery:
    """One request group with every name resolved to an internal id."""

    index: int
    suffix: str
    amounts: list[tuple[int, int]]  # (resource class id, amount), request order
    required: list[list[int]] = field(default_factory=list)  # any-of trait id sets
    forbidden: list[int] = field(default_factory=list)
    member_of: list[list[int]] = field(default_factory=list)  # any-of aggregate id sets
    forbidden_aggs: list[int] = field(default_factory=list)
    in_tree_root: int | None = None

    @property
    def same_provider(self) -> bool:
        return self.suffix != ""

    @property
    def resourceless(self) -> bool:
        return not self.amounts


@dataclass
class AnchorFilter:
    """``root_required``: traits the anchor root must have / must not have."""

    required: list[int] = field(default_factory=list)
    forbidden: list[int] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.required or self.forbidden)


@dataclass
class Sharing:
    """The sharing providers of the cloud (usually none) and every trait they have."""

    ids: list[int] = field(default_factory=list)
    traits: set[int] = field(default_factory=set)


# Anchors in ``(after, upto]``; ``None`` is every anchor.
Window = tuple[int, int] | None


# -- group shapes ---------------------------------------------------------------------

@dataclass(frozen=True)
class Shape:
    """What a group's statement looks like; values go in parameters."""

    dialect: str
    unsuffixed: bool
    # a resource-less group without a required trait or aggregate: matches nothing
    nothing: bool
    classes: int
    required: int
    forbidden: bool
    member_of: int
    forbidden_aggs: bool
    in_tree: bool
    root_required: int
    root_forbidden: bool
    window: bool
    sharing: bool
    # unsuffixed group: required sets an anchor's tree must offer
    anchor_needs: tuple[int, ...] = ()


def shape_of(
    conn: AsyncConnection,
    group: GroupQuery,
    anchors: AnchorFilter,
    window: Window,
    sharing: Sharing,
    anchor_needs: tuple[int, ...] = (),
) -> Shape:
    return Shape(
        dialect=conn.dialect.name,
        unsuffixed=not group.same_provider,
        nothing=group.resourceless and not (group.required or group.member_of),
        classes=len(group.amounts),
        required=len(group.required),
        forbidden=bool(group.forbidden),
        member_of=len(group.member_of),
        forbidden_aggs=bool(group.forbidden_aggs),
        in_tree=group.in_tree_root is not None,
        root_required=len(anchors.required),
        root_forbidden=bool(anchors.forbidden),
        window=window is not None,
        sharing=bool(sharing.ids),
        anchor_needs=anchor_needs,
    )


def params_of(
    conn: AsyncConnection,
    group: GroupQuery,
    anchors: AnchorFilter,
    window: Window,
    sharing: Sharing,
    pre: str = "",
) -> dict[str, Any]:
    """Values of a group's statement: the group's own under ``pre``, the rest shared."""
    params: dict[str, Any] = {}
    for k, (rc, amount) in enumerate(group.amounts):
        params[f"{pre}rc{k}"] = rc
        params[f"{pre}amount{k}"] = amount
    params[f"{pre}rcs"] = [rc for rc, _ in group.amounts]
    for j, ids in enumerate(group.required):
        params[f"{pre}required{j}"] = ids
    params[f"{pre}forbidden"] = group.forbidden
    for j, ids in enumerate(group.member_of):
        params[f"{pre}member{j}"] = ids
    params[f"{pre}forbidden_aggs"] = group.forbidden_aggs
    params[f"{pre}in_tree"] = group.in_tree_root
    for j, trait in enumerate(anchors.required):
        params[f"root_required{j}"] = trait
    params["root_forbidden"] = anchors.forbidden
    if window is not None:
        params["after"], params["upto"] = window
    if sharing.ids:
        params["sharing"] = list_parameter(conn.dialect.name, sharing.ids)
    return params

