"""Usages: ``GET /resource_providers/{uuid}/usages`` (and ``GET /usages``, 1.9+)."""

from fastapi import Request
from pydantic import BaseModel, Field, ValidationError
from starlette.responses import Response

from app.api import http, parameters
from app.api.deps import ReadDatabaseDep
from app.api.routing import PlacementRouter
from app.exceptions import InvalidUsagesQuery
from app.microversion import CONSUMER_TYPES, PROJECT_USAGES
from app.query import check_query_schema
from app.schemas.allocations import (
    CONSUMER_TYPE_QUERY_PATTERN,
    UsagesQueryV1_9,
    UsagesQueryV1_38,
)
from app.schemas.validation import describe_validation_error
from app.schemas.versioned import ByVersion
from app.services import usages as service

router = PlacementRouter(tags=["usages"])


class ProviderUsagesOut(BaseModel):
    resource_provider_generation: int
    usages: dict[str, int]


class UsagesOut(BaseModel):
    usages: dict[str, int] = Field(description="Amount per resource class.")


class UsagesByTypeOut(BaseModel):
    usages: dict[str, dict[str, int]] = Field(
        description="Per consumer type: `consumer_count` and the amount per resource class."
    )


USAGES_OUT = ByVersion((PROJECT_USAGES, UsagesOut), (CONSUMER_TYPES, UsagesByTypeOut))


@router.endpoint(
    "GET", "/resource_providers/{uuid}/usages", policy="placement:resource_providers:usages",
    response=ProviderUsagesOut,
)
async def provider_usages(request: Request, uuid: str, db: ReadDatabaseDep) -> Response:
    """One entry per class the provider has inventory of: the sum of its allocations."""
    found = await service.provider_usages(db, uuid)
    return http.respond(
        request, {"resource_provider_generation": found.generation, "usages": found.usages}
    )


_EXTERNAL_ID = {"type": "string", "minLength": 1, "maxLength": 255}


def usages_query_schema(by_type: bool) -> dict[str, object]:
    """The reference's query schema of GET /usages (its 400s print it)."""
    properties: dict[str, object] = {"project_id": _EXTERNAL_ID, "user_id": _EXTERNAL_ID}
    if by_type:
        properties["consumer_type"] = {
            "type": "string", "pattern": CONSUMER_TYPE_QUERY_PATTERN,
            "minLength": 1, "maxLength": 255,
        }
    return {"type": "object", "properties": properties, "required": ["project_id"],
            "additionalProperties": False}


@router.endpoint(
    "GET", "/usages", policy="placement:usages", since=PROJECT_USAGES, authorize=False,
    response=USAGES_OUT, query=parameters.usages(),
)
async def total_usages(request: Request, db: ReadDatabaseDep) -> Response:
    """Usage totals of a project (and user); by consumer type from 1.38."""
    query = dict(request.query_params)
    # The policy sees the queried project, and runs before query validation.
    http.authorize(request, "placement:usages", {"project_id": query.get("project_id")})
    by_type = http.version(request) >= CONSUMER_TYPES
    model = UsagesQueryV1_38 if by_type else UsagesQueryV1_9
    check_query_schema(query, usages_query_schema(by_type))
    try:
        params = model.model_validate(query)
    except ValidationError as exc:
        raise InvalidUsagesQuery(details=describe_validation_error(exc)) from None
    usages: object
    if isinstance(params, UsagesQueryV1_38):
        usages = await service.project_usages_by_type(
            db, params.project_id, params.user_id, params.consumer_type
        )
    else:
        usages = await service.project_usages(db, params.project_id, params.user_id)
    return http.respond(request, {"usages": usages})
