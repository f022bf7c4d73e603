"""Resource providers: catalogue entries (see :mod:`app.exceptions`)."""

from app.exceptions.base import (
    DUPLICATE_NAME,
    PROVIDER_CANNOT_DELETE_PARENT,
    PROVIDER_INUSE,
    Conflict,
    InvalidInput,
    ResourceProviderNotFound,
)

_CREATE_PROVIDER_FAILED = (
    'Unable to create resource provider "{name}", {uuid}: Object action create failed '
    "because: "
)
_UPDATE_PROVIDER_FAILED = (
    "Unable to save resource provider {uuid}: Object action update failed because: "
)


class ProviderNameRequired(InvalidInput):
    msg_fmt = _CREATE_PROVIDER_FAILED + "name is required"


class ProviderOwnParent(InvalidInput):
    msg_fmt = _CREATE_PROVIDER_FAILED + (
        "parent provider UUID cannot be same as UUID. Please set parent provider UUID to "
        "None if there is no parent."
    )


class ParentProviderNotFound(InvalidInput):
    msg_fmt = _CREATE_PROVIDER_FAILED + "parent provider UUID does not exist."


class ProviderUuidExists(Conflict):
    msg_fmt = "Conflicting resource provider uuid: {uuid} already exists."
    default_code = DUPLICATE_NAME


class ProviderNameExists(Conflict):
    msg_fmt = "Conflicting resource provider name: {name} already exists."
    default_code = DUPLICATE_NAME


class NewParentProviderNotFound(InvalidInput):
    """Reference quirk: the update names its action "create" here."""

    msg_fmt = (
        "Unable to save resource provider {uuid}: Object action create failed because: "
        "parent provider UUID does not exist."
    )


class UnparentingNotAllowed(InvalidInput):
    msg_fmt = _UPDATE_PROVIDER_FAILED + "un-parenting a provider is not currently allowed."


class ReparentingNotAllowed(InvalidInput):
    msg_fmt = _UPDATE_PROVIDER_FAILED + "re-parenting a provider is not currently allowed."


class ProviderTreeLoop(InvalidInput):
    msg_fmt = _UPDATE_PROVIDER_FAILED + "creating loop in the provider tree is not allowed."


class ProviderRenameConflict(Conflict):
    msg_fmt = "Conflicting resource provider {name} already exists."
    default_code = DUPLICATE_NAME


class ProviderToDeleteNotFound(ResourceProviderNotFound):
    msg_fmt = "No resource provider with uuid {uuid} found for delete"


class ProviderHasChildren(Conflict):
    msg_fmt = "Unable to delete parent resource provider {uuid}: It has child resource providers."
    default_code = PROVIDER_CANNOT_DELETE_PARENT


class ProviderHasAllocations(Conflict):
    msg_fmt = "Unable to delete resource provider {uuid}: Resource provider has allocations."
    default_code = PROVIDER_INUSE


class UnknownRequiredTraits(InvalidInput):
    """``required`` on ``GET /resource_providers`` names traits that do not exist (sorted)."""

    msg_fmt = 'Invalid trait(s) in "required" parameter: No such trait(s): {names}.'


class InvalidResourcesParameter(InvalidInput):
    """``resources`` on ``GET /resource_providers``; ``reason``: the unknown class."""

    msg_fmt = "Invalid resource class in resources parameter: {reason}"
