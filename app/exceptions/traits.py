"""Traits, aggregates and usages: catalogue entries (see :mod:`app.exceptions`)."""

from app.exceptions.base import (
    Conflict,
    InvalidInput,
    NotFound,
    ResourceProviderNotFound,
)


class ResourceProviderNotFoundRepeated(ResourceProviderNotFound):
    """Provider traits and usages reads: the reference repeats the lookup's
    message after its own prefix."""

    msg_fmt = (
        "No resource provider with uuid {uuid} found: No resource provider with uuid {uuid} found"
    )


class TraitNotFound(NotFound):
    msg_fmt = "No such trait(s): {name}."


class UnknownTraits(InvalidInput):
    """Names in a provider's new trait list that no trait has (comma-separated)."""

    msg_fmt = "No such trait {names}"


class InvalidCustomTraitName(InvalidInput):
    msg_fmt = (
        'The trait is invalid. A valid trait must be no longer than 255 characters, start '
        'with the prefix "CUSTOM_" and use following characters: "A"-"Z", "0"-"9" and "_"'
    )


class StandardTraitNotDeletable(InvalidInput):
    msg_fmt = "Cannot delete standard trait {name}."


class TraitInUse(Conflict):
    msg_fmt = "The trait {name} is in use by a resource provider."


class BadTraitNameFilter(InvalidInput):
    msg_fmt = (
        "Badly formatted name parameter. Expected name query string parameter in form: "
        '?name=[in|startswith]:[name1,name2|prefix]. Got: "{value}"'
    )


class BadTraitAssociatedFilter(InvalidInput):
    msg_fmt = 'The query parameter "associated" only accepts "true" or "false"'


# Aggregates need no entries of their own (a missing provider is the plain
# ResourceProviderNotFound). Usages: a missing provider is
# ResourceProviderNotFoundRepeated above.


class InvalidUsagesQuery(InvalidInput):
    """``GET /usages`` query failing its schema; ``details`` as the validator words it."""

    msg_fmt = "Invalid query string parameters: {details}"
