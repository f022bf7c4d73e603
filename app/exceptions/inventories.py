"""Inventories: catalogue entries (see :mod:`app.exceptions`)."""

from app.exceptions.base import (
    CONCURRENT_UPDATE,
    INVENTORY_INUSE,
    Conflict,
    InvalidInput,
    NotFound,
    ResourceProviderNotFound,
)

# Reference texts of a failed write (``reason``) are wrapped in the endpoint's
# own prefix, as the reference does.


class InventoryProviderNotFound(ResourceProviderNotFound):
    """Inventory reads: the lookup's message repeated after " : "."""

    msg_fmt = (
        "No resource provider with uuid {uuid} found : No resource provider with uuid {uuid} found"
    )


class InventoryOfClassNotFound(NotFound):
    msg_fmt = "No inventory of class {resource_class} for {uuid}"


class ReservedAboveTotal(InvalidInput):
    """The capacity rule from 1.26 (``reserved`` may equal ``total``)."""

    msg_fmt = (
        "Invalid inventory for '{resource_class}' on resource provider '{uuid}'. "
        "The reserved value is greater than total."
    )


class ReservedNotBelowTotal(InvalidInput):
    """The capacity rule below 1.26."""

    msg_fmt = (
        "Invalid inventory for '{resource_class}' on resource provider '{uuid}'. "
        "The reserved value is greater than or equal to total."
    )


class InventoryExists(Conflict):
    msg_fmt = "Inventory for '{resource_class}' already exists on resource provider '{uuid}'."
    default_code = CONCURRENT_UPDATE


class InventoryInUse(Conflict):
    """Inventory that would be removed still has allocations (``classes`` comma-joined)."""

    msg_fmt = "Inventory for '{classes}' on resource provider '{uuid}' in use."
    default_code = INVENTORY_INUSE


class InventoryGenerationConflict(Conflict):
    """The generation in an inventory body is not the provider's."""

    msg_fmt = "resource provider generation conflict"
    default_code = CONCURRENT_UPDATE


class CannotCreateInventory(InvalidInput):
    msg_fmt = "Unable to create inventory for resource provider {uuid}: {reason}"


class InventoryCreateConflict(Conflict):
    msg_fmt = "Update conflict: {reason}"
    default_code = CONCURRENT_UPDATE


class CannotUpdateInventory(InvalidInput):
    msg_fmt = "Unable to update inventory for resource provider {uuid}: {reason}"


class UnknownClassInInventory(InvalidInput):
    msg_fmt = "Unknown resource class in inventory for resource provider {uuid}: {reason}"


class InventoryUpdateConflict(Conflict):
    """Raised with the wrapped error's ``code`` (in use or concurrent update)."""

    msg_fmt = "update conflict: {reason}"
    default_code = CONCURRENT_UPDATE


class NoInventoryToUpdate(InvalidInput):
    msg_fmt = (
        "No inventory record with resource class for resource provider {uuid}: "
        "No inventory of class {resource_class} found."
    )


class NoInventoryToDelete(NotFound):
    msg_fmt = (
        "No inventory of class {resource_class} found for delete: "
        "No inventory of class {resource_class} found for delete"
    )


class UnknownClassToDelete(NotFound):
    msg_fmt = (
        "No inventory of class {resource_class} found for delete: "
        "No such resource class {resource_class}."
    )


class CannotDeleteInventoryOfClass(Conflict):
    """Reference quirk Q3: inventory in use answers concurrent_update here too."""

    msg_fmt = "Unable to delete inventory of class {resource_class}: {reason}"
    default_code = CONCURRENT_UPDATE
