"""Allocations, consumers and the reshaper: catalogue entries (see :mod:`app.exceptions`)."""

from app.exceptions.base import (
    CONCURRENT_UPDATE,
    PROVIDER_NOT_FOUND,
    PROVIDER_RACED,
    Conflict,
    InvalidInput,
    NotFound,
    ResourceProviderNotFound,
)


class MalformedConsumerUuid(InvalidInput):
    msg_fmt = "Malformed consumer_uuid: {uuid}"


class ConsumerGenerationConflict(Conflict):
    """``expected``: the stored generation, or ``null`` for a consumer not yet created."""

    msg_fmt = "consumer generation conflict - expected {expected} but got {given}"
    default_code = CONCURRENT_UPDATE


class AllocationProviderNotFound(InvalidInput):
    msg_fmt = "Allocation for resource provider '{uuid}' that does not exist."


class AllocationInventoryInvalid(Conflict):
    """No inventory of a class on a provider (``classes`` and ``uuids`` comma-joined)."""

    msg_fmt = (
        "Unable to allocate inventory: Inventory for '{classes}' on resource provider "
        "'{uuids}' invalid."
    )


class AllocationViolatesConstraints(Conflict):
    """``min_unit``, ``max_unit`` or ``step_size``."""

    msg_fmt = (
        "Unable to allocate inventory: Unable to create allocation for '{resource_class}' on "
        "resource provider '{uuid}'. The requested amount would violate inventory constraints."
    )


class AllocationExceedsCapacity(Conflict):
    msg_fmt = (
        "Unable to allocate inventory: Unable to create allocation for '{resource_class}' on "
        "resource provider '{uuid}'. The requested amount would exceed the capacity."
    )


class ConsumerUnknownResourceClass(InvalidInput):
    """``PUT /allocations/{uuid}``: ``reason`` is :class:`UnknownResourceClass`'s text."""

    msg_fmt = "Unable to allocate inventory for consumer {uuid}: {reason}"


class AllocationsUnknownResourceClass(InvalidInput):
    """``POST /allocations`` (no colon, as the reference has it)."""

    msg_fmt = "Unable to allocate inventory {reason}"


class AllocationsRaced(Conflict):
    """Provider generations kept moving under a claim until its retries ran out."""

    msg_fmt = "Inventory and/or allocations changed while attempting to allocate: " + (
        PROVIDER_RACED
    )
    default_code = CONCURRENT_UPDATE


class NoAllocationsForConsumer(NotFound):
    msg_fmt = "No allocations for consumer '{uuid}'"


class AllocationsProviderNotFound(ResourceProviderNotFound):
    msg_fmt = "Resource provider '{uuid}' not found: No resource provider with uuid {uuid} found"


class ReshapeProviderNotFound(InvalidInput):
    msg_fmt = (
        "Resource provider {uuid} in inventories not found: "
        "No resource provider with uuid {uuid} found"
    )
    default_code = PROVIDER_NOT_FOUND


class ReshapeGenerationConflict(Conflict):
    msg_fmt = (
        "resource provider generation conflict for provider {uuid}: "
        "actual: {actual}, given: {given}"
    )
    default_code = CONCURRENT_UPDATE


class MalformedReshape(InvalidInput):
    """``reason``: the wrapped error's text (an unknown resource class)."""

    msg_fmt = "malformed reshaper data: {reason}"


class ReshapeConflict(Conflict):
    """``reason``: the wrapped error's text; raised with its ``code`` (in use or
    concurrent update)."""

    msg_fmt = "update conflict: {reason}"
    default_code = CONCURRENT_UPDATE
