"""Rendering one tile two ways for comparisons: as the tile route does, and per request from
the raw tables (the definitions the prepared geometry and the cluster pyramid replace)."""

from __future__ import annotations

from typing import Any

import pytest
import shapely
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from gridgov.auth.models import User
from gridgov.auth.scope import Scope, scope_for
from gridgov.gis import queries, tiles
from gridgov.gis.layers import LAYERS
from tests.fixtures.world import World

mvt = pytest.importorskip("mapbox_vector_tile")

COUNTY_BOX = (111.0, 26.0, 111.2, 26.2)


def scope_of(session: Session, world: World, username: str) -> Scope:
    user = session.scalar(select(User).where(User.id == world.users[username]))
    assert user is not None
    return scope_for(session, user)


def served(session: Session, scope: Scope, layer_id: str, z: int, x: int, y: int) -> bytes:
    """The tile as the route renders it (prepared geometry, cluster pyramid)."""
    layer, where, params = tiles._prepare(scope, layer_id, z, x, y)
    sql, params = tiles.statement(layer, where, params, z, x, y)
    return bytes(session.execute(text(sql), params).scalar_one() or b"")


def per_request(session: Session, scope: Scope, layer_id: str, z: int, x: int, y: int) -> bytes:
    """The tile computed from the layer's own tables alone: areas simplified and clipped per
    request, points grouped into cells per request."""
    layer = LAYERS[layer_id]
    where, params = queries.where_sql(layer, scope)
    _, params = tiles.statement(layer, where, params, z, x, y)
    if tiles.clustered(layer, z):
        sql = queries.cluster_tile_sql(layer, where)
    else:
        sql = queries.tile_sql(layer, where)
    return bytes(session.execute(text(sql), params).scalar_one() or b"")


def features(body: bytes, layer_id: str) -> list[dict[str, Any]]:
    if not body:
        return []
    return mvt.decode(body, default_options={"y_coord_down": True})[layer_id]["features"]


def shape(feature: dict[str, Any]) -> shapely.Geometry:
    return shapely.geometry.shape(feature["geometry"])
