"""Deterministic demo county generator (pure Python: numpy + shapely)."""
