"""Response shapes of ``GET /allocation_candidates`` (documentation only).

The query string is validated by ``app.services.candidates.request`` (it depends on the
microversion and must word its errors like the reference's JSON Schema).
"""

from pydantic import BaseModel, Field

from app.microversion import (
    ALLOCATION_CANDIDATES,
    ALLOCATIONS_DICT_FORM,
    CANDIDATE_MAPPINGS,
    CANDIDATES_REQUIRED_TRAITS,
    NESTED_CANDIDATES,
)
from app.schemas.versioned import ByVersion, since


class Resources(BaseModel):
    resources: dict[str, int] = Field(description="Amount per resource class.")


class ProviderUuid(BaseModel):
    uuid: str


class AllocationListItem(BaseModel):
    resource_provider: ProviderUuid
    resources: dict[str, int]


class AllocationRequestList(BaseModel):
    """1.10-1.11: a list of ``{resource_provider: {uuid}, resources}``."""

    allocations: list[AllocationListItem]


class AllocationRequest(BaseModel):
    """1.12+: allocations keyed by provider UUID."""

    allocations: dict[str, Resources] = Field(description="Keyed by provider UUID.")
    mappings: dict[str, list[str]] = Field(
        description="Request group suffix ('' for the unsuffixed group) -> providers.",
        json_schema_extra=since(CANDIDATE_MAPPINGS),
    )


class ClassSummary(BaseModel):
    capacity: int
    used: int


class ProviderSummary(BaseModel):
    resources: dict[str, ClassSummary]
    traits: list[str] = Field(json_schema_extra=since(CANDIDATES_REQUIRED_TRAITS))
    parent_provider_uuid: str | None = Field(json_schema_extra=since(NESTED_CANDIDATES))
    root_provider_uuid: str = Field(json_schema_extra=since(NESTED_CANDIDATES))


class AllocationCandidatesV1_10(BaseModel):
    allocation_requests: list[AllocationRequestList]
    provider_summaries: dict[str, ProviderSummary]


class AllocationCandidates(BaseModel):
    allocation_requests: list[AllocationRequest]
    provider_summaries: dict[str, ProviderSummary]


CANDIDATES_OUT = ByVersion(
    (ALLOCATION_CANDIDATES, AllocationCandidatesV1_10),
    (ALLOCATIONS_DICT_FORM, AllocationCandidates),
)
