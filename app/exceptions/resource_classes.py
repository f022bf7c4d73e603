"""Resource classes: catalogue entries (see :mod:`app.exceptions`)."""

from app.exceptions.base import (
    Conflict,
    InvalidInput,
    NotFound,
)


class ResourceClassNotFound(NotFound):
    msg_fmt = "No such resource class {name}."


class UnknownResourceClass(InvalidInput):
    """A class named in a body or query does not exist (callers often wrap the text)."""

    msg_fmt = "No such resource class {name}."


class ResourceClassExists(Conflict):
    msg_fmt = "Conflicting resource class already exists: {name}"


class ResourceClassNameTaken(Conflict):
    """The new name of a 1.2-1.6 rename is someone else's."""

    msg_fmt = "Resource class already exists: {name}"


class StandardResourceClassNotUpdatable(InvalidInput):
    msg_fmt = "Cannot update standard resource class {name}"


class StandardResourceClassNotDeletable(InvalidInput):
    msg_fmt = "Error in delete resource class: Cannot delete standard resource class {name}."


class ResourceClassInUse(Conflict):
    msg_fmt = (
        "Error in delete resource class: Cannot delete resource class {name}. "
        "Class is in use in inventory."
    )
