"""What the hierarchy publishes when its writes invalidate what upper domains derived from it
(``gridgov.events``): households keep a grid derived from their point and a flag for villages
without a boundary."""

from __future__ import annotations

from dataclasses import dataclass

from gridgov.events import Event


@dataclass(frozen=True)
class VillageBoundariesChanged(Event):
    """Villages' boundaries were drawn or cleared."""

    village_ids: tuple[int, ...]


@dataclass(frozen=True)
class GridsChanged(Event):
    """Grids of these villages were created, redrawn or retired."""

    village_ids: tuple[int, ...]
