"""Plain value objects that cross the layers (no I/O, no framework).

Repositories read and write them, services pass them on, schemas build them
from request bodies and routers render them.
"""

import math
import sys
from dataclasses import asdict, dataclass
from datetime import datetime

# The largest value an inventory field may hold (the columns are 32-bit).
MAX_INT = 0x7FFFFFFF


@dataclass
class ProviderRow:
    id: int
    uuid: str
    name: str | None
    generation: int
    parent_provider_id: int | None
    root_provider_id: int | None
    parent_provider_uuid: str | None
    root_provider_uuid: str | None
    created_at: datetime | None
    updated_at: datetime | None

    @property
    def modified(self) -> datetime | None:
        return self.updated_at or self.created_at


@dataclass(frozen=True)
class InventoryRecord:
    """The six inventory fields, defaults applied (what gets stored)."""

    total: int
    reserved: int = 0
    min_unit: int = 1
    max_unit: int = MAX_INT
    step_size: int = 1
    allocation_ratio: float = 1.0

    @property
    def capacity(self) -> int:
        """``int((total - reserved) * allocation_ratio)``, truncated toward zero."""
        return capacity(self.total, self.reserved, self.allocation_ratio)

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


# Where a product of an int32 and a float beyond float range lands (the
# reference raises OverflowError there; the largest finite float keeps the sign).
_FLOAT_LIMIT = int(sys.float_info.max)


def capacity(total: float, reserved: float, allocation_ratio: float) -> int:
    """Truncated toward zero, as the reference computes it; may exceed 64 bits
    (renderers fall back to exact integers), never infinite."""
    product = (total - reserved) * allocation_ratio
    if math.isnan(product):
        return 0
    if math.isinf(product):
        return _FLOAT_LIMIT if product > 0 else -_FLOAT_LIMIT
    return int(product)
