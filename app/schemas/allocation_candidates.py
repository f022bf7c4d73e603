"""Response shapes of ``GET /allocation_candidates`` (documentation only).

The query string is validated by ``app.services.candidates.request`` (it depends on the
microversion and must word its errors like the reference's JSON Schema).
"""

from pydantic import BaseModel, Field


class Resources(BaseModel):
    resources: dict[str, int] = Field(description="Amount per resource class.")


class AllocationRequest(BaseModel):
    """1.12+ form; 1.10-1.11 use a list of ``{resource_provider: {uuid}, resources}``."""

    allocations: dict[str, Resources] = Field(description="Keyed by provider UUID.")
    mappings: dict[str, list[str]] | None = Field(
        default=None,
        description="1.34+: request group suffix ('' for the unsuffixed group) -> providers.",
    )


class ClassSummary(BaseModel):
    capacity: int
    used: int


class ProviderSummary(BaseModel):
    resources: dict[str, ClassSummary]
    traits: list[str] | None = Field(default=None, description="1.17+")
    parent_provider_uuid: str | None = Field(default=None, description="1.29+")
    root_provider_uuid: str | None = Field(default=None, description="1.29+")


class AllocationCandidates(BaseModel):
    allocation_requests: list[AllocationRequest]
    provider_summaries: dict[str, ProviderSummary]
