"""One module per resource; ``ALL_ROUTERS`` is what the app factory mounts."""

from app.routers import (
    aggregates,
    allocation_candidates,
    allocations,
    inventories,
    ops,
    reshaper,
    resource_classes,
    resource_providers,
    root,
    traits,
    usages,
)

ALL_ROUTERS = [
    root.router,
    resource_providers.router,
    inventories.router,
    usages.router,
    aggregates.router,
    traits.router,
    resource_classes.router,
    allocations.router,
    allocation_candidates.router,
    reshaper.router,
    ops.router,
]
