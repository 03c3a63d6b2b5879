"""Maps for GIS staff and the dashboard: OGC API – Features, vector tiles (DESIGN §9)."""
