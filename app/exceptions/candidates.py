"""Allocation candidates: catalogue entries (see :mod:`app.exceptions`)."""

from app.exceptions.base import (
    QUERY_BAD_VALUE,
    QUERY_DUPLICATE_KEY,
    QUERY_MISSING_VALUE,
    InvalidInput,
)

# (``app.services.candidates``: the query's 400s in the reference's order, then
# the names the database does not know.)


class InvalidCandidatesQuery(InvalidInput):
    """The query failing its JSON schema; ``details`` worded like the validator."""

    msg_fmt = "Invalid query string parameters: {details}"


class RootRequiredRepeated(InvalidInput):
    msg_fmt = "Query parameter 'root_required' may be specified only once."
    default_code = QUERY_DUPLICATE_KEY


class RootRequiredConflict(InvalidInput):
    msg_fmt = "Conflicting required and forbidden traits found in root_required: {traits}"
    default_code = QUERY_BAD_VALUE


class SameSubtreeUnsuffixed(InvalidInput):
    # The trailing space is the reference's.
    msg_fmt = "Empty string (unsuffixed group) can not be specified in `same_subtree` "
    default_code = QUERY_BAD_VALUE


class NoResourcesInAnyGroup(InvalidInput):
    """From 1.36: every group is resource-less."""

    msg_fmt = "There must be at least one resources or resources[$S] parameter."
    default_code = QUERY_MISSING_VALUE


class ResourcelessGroupOutsideSubtree(InvalidInput):
    msg_fmt = (
        "Resourceless suffixed group request should be specified in `same_subtree` "
        "query param: bad group(s) - {suffixes}."
    )
    default_code = QUERY_BAD_VALUE


class UnknownSameSubtreeSuffixes(InvalidInput):
    """``unknown`` and ``known`` are lists, shown as Python lists."""

    msg_fmt = "Real suffixes should be specified in `same_subtree`: {unknown} not found in {known}."
    default_code = QUERY_BAD_VALUE


class OrphanedTraitKeys(InvalidInput):
    """Before 1.36 (the double space is the reference's)."""

    msg_fmt = (
        "All traits parameters must be associated with resources.  Found the following "
        "orphaned traits keys: {keys}"
    )


class OrphanedMemberOfKeys(InvalidInput):
    msg_fmt = (
        "All member_of parameters must be associated with resources. Found the "
        "following orphaned member_of keys: {keys}"
    )


class GroupWithoutResources(InvalidInput):
    msg_fmt = "All request groups must specify resources."


class NoRequestGroup(InvalidInput):
    msg_fmt = "At least one request group (`resources` or `resources{{$S}}`) is required."


class GroupTraitConflict(InvalidInput):
    msg_fmt = (
        "Conflicting required and forbidden traits found in the following traits keys: {keys}"
    )


class GroupPolicyRequired(InvalidInput):
    msg_fmt = (
        'The "group_policy" parameter is required when specifying more than one '
        '"resources{{N}}" parameter.'
    )


class CandidateUnknownTrait(InvalidInput):
    msg_fmt = "No such trait(s): {name}."


class CandidateUnknownResourceClass(InvalidInput):
    msg_fmt = "Invalid resource class in resources parameter: No such resource class {name}."


class CandidatesTooExpensive(InvalidInput):
    """The search explored more combinations than the deployment allows
    (``candidates_max_combinations``): bounded work and memory per request."""

    msg_fmt = (
        "The allocation candidates request would explore more than {limit} combinations "
        "of providers. Narrow it: use 'limit', fewer granular groups, or "
        "group_policy=isolate."
    )
    default_code = QUERY_BAD_VALUE
