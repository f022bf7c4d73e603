"""The consumer body of the allocation, usage and reshaper tests.

The rest of their helpers (``make_provider`` & co) are in ``tests.api_helpers``.
"""

from typing import Any


def body(
    allocations: dict[str, dict[str, int]],
    generation: int | None = None,
    *,
    project: str = "p1",
    user: str = "u1",
    consumer_type: str | None = "INSTANCE",
) -> dict[str, Any]:
    """A 1.38 consumer body (drop ``consumer_type`` for 1.28-1.37)."""
    data: dict[str, Any] = {
        "allocations": {rp: {"resources": res} for rp, res in allocations.items()},
        "consumer_generation": generation,
        "project_id": project,
        "user_id": user,
    }
    if consumer_type is not None:
        data["consumer_type"] = consumer_type
    return data
