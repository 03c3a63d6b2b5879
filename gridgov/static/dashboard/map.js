// The map: the project's own vector tiles (townships, villages, grids, households) with the
// user's token, the current unit's children coloured by a figure of the dashboard (feature-state
// keyed by code), open issues and spatial QA findings as GeoJSON. No glyphs, sprites or fonts
// are loaded (no text labels on the map; names show in HTML popups), so nothing comes from
// outside this server unless the 天地图 basemap is configured.
import * as maplibregl from './vendor/maplibre-gl/6.20.0/maplibre-gl.mjs';
import { ROOT, accessToken, ours, request } from './api.js';

const CHILD_LAYER = { county: 'townships', township: 'villages', village: 'grids', grid: null };
const OWN_LAYER = { county: 'counties', township: 'townships', village: 'villages', grid: 'grids' };
const EMPTY = { type: 'FeatureCollection', features: [] };
const CLEAR = 'rgba(0,0,0,0)';

function vector(layer, promote = true) {
  const source = { type: 'vector', url: `${ROOT}/tiles/${layer}/tilejson.json` };
  if (promote) source.promoteId = { [layer]: 'code' };
  return source;
}

function tianditu(key, layer) {
  const tiles = [0, 1, 2, 3, 4, 5, 6, 7].map(
    (i) =>
      `https://t${i}.tianditu.gov.cn/${layer}_w/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0` +
      `&LAYER=${layer}&STYLE=default&TILEMATRIXSET=w&FORMAT=tiles` +
      `&TILEMATRIX={z}&TILEROW={y}&TILECOL={x}&tk=${encodeURIComponent(key)}`,
  );
  return { type: 'raster', tiles, tileSize: 256, maxzoom: 18, attribution: '© 天地图' };
}

function fill(id, source, opacity) {
  return {
    id: `${id}-fill`,
    type: 'fill',
    source,
    'source-layer': source,
    paint: {
      'fill-color': ['to-color', ['coalesce', ['feature-state', 'colour'], CLEAR]],
      'fill-opacity': opacity,
    },
  };
}

function line(id, source, color, width, extra = {}) {
  return {
    id: `${id}-line`,
    type: 'line',
    source,
    'source-layer': source,
    paint: { 'line-color': color, 'line-width': width },
    ...extra,
  };
}

function style(config) {
  const sources = {
    townships: vector('townships'),
    villages: vector('villages'),
    grids: vector('grids'),
    households: vector('households', false),
    issues: { type: 'geojson', data: EMPTY },
    qa: { type: 'geojson', data: EMPTY },
  };
  const layers = [{ id: 'background', type: 'background', paint: { 'background-color': '#eef2ee' } }];
  if (config.tianditu_key) {
    sources['tdt-vec'] = tianditu(config.tianditu_key, 'vec');
    sources['tdt-cva'] = tianditu(config.tianditu_key, 'cva');
    layers.push({ id: 'tdt-vec', type: 'raster', source: 'tdt-vec' });
    layers.push({ id: 'tdt-cva', type: 'raster', source: 'tdt-cva' });
  }
  layers.push(
    fill('townships', 'townships', 0),
    fill('villages', 'villages', 0),
    fill('grids', 'grids', 0),
    // Thousands of grids at county zoom: faint there, full strength from zoom 12.
    line('grids', 'grids', '#7c8a7c', 0.8, { paint: { 'line-color': '#7c8a7c', 'line-width': 0.8, 'line-opacity': ['interpolate', ['linear'], ['zoom'], 9, 0.3, 12, 1] } }),
    line('villages', 'villages', '#4d6b53', 1.4),
    line('townships', 'townships', '#24452c', 2.4),
    {
      id: 'current-line',
      type: 'line',
      source: 'villages',
      'source-layer': 'villages',
      filter: ['==', ['get', 'code'], ''],
      paint: { 'line-color': '#1565c0', 'line-width': 3.5 },
    },
    {
      id: 'qa-fill',
      type: 'fill',
      source: 'qa',
      filter: ['==', ['geometry-type'], 'Polygon'],
      paint: { 'fill-color': '#d500f9', 'fill-opacity': 0.45 },
    },
    {
      id: 'qa-line',
      type: 'line',
      source: 'qa',
      filter: ['in', ['geometry-type'], ['literal', ['LineString', 'Polygon']]],
      paint: { 'line-color': '#aa00ff', 'line-width': 2 },
    },
    {
      id: 'qa-point',
      type: 'circle',
      source: 'qa',
      filter: ['==', ['geometry-type'], 'Point'],
      paint: { 'circle-color': '#d500f9', 'circle-radius': 6, 'circle-stroke-color': '#fff', 'circle-stroke-width': 1 },
    },
    {
      id: 'households-cluster',
      type: 'circle',
      source: 'households',
      'source-layer': 'households',
      filter: ['==', ['get', 'cluster'], true],
      paint: {
        'circle-color': '#5d7fa3',
        'circle-opacity': 0.7,
        'circle-radius': ['interpolate', ['linear'], ['sqrt', ['get', 'count']], 1, 3, 30, 16],
        'circle-stroke-color': '#fff',
        'circle-stroke-width': 0.6,
      },
    },
    {
      id: 'households-point',
      type: 'circle',
      source: 'households',
      'source-layer': 'households',
      filter: ['!=', ['get', 'cluster'], true],
      paint: {
        'circle-color': ['case', ['!=', ['get', 'tags'], ''], '#ef6c00', '#2e7d32'],
        'circle-radius': ['interpolate', ['linear'], ['zoom'], 12, 3, 17, 7],
        'circle-stroke-color': '#fff',
        'circle-stroke-width': 1,
      },
    },
    {
      id: 'issues-point',
      type: 'circle',
      source: 'issues',
      paint: {
        'circle-color': ['match', ['get', 'alarm'], 'red', '#d32f2f', 'yellow', '#f9a825', '#1976d2'],
        'circle-radius': 7,
        'circle-stroke-color': '#fff',
        'circle-stroke-width': 2,
      },
    },
  );
  // No "glyphs" and no "sprite": nothing to fetch but our tiles (and 天地图 when configured).
  return { version: 8, sources, layers };
}

export class DashboardMap {
  constructor(container, config, handlers) {
    this.handlers = handlers;
    this.level = null;
    this.code = null;
    this.colours = new Map();
    this.map = new maplibregl.Map({
      container,
      style: style(config),
      center: [111.45, 26.4],
      zoom: 8,
      attributionControl: { compact: true },
      // Our tiles need the bearer token; nothing else gets it.
      transformRequest: (url) => (ours(url) ? { url, headers: { Authorization: `Bearer ${accessToken()}` } } : { url }),
    });
    this.map.addControl(new maplibregl.NavigationControl({ showCompass: false }), 'top-right');
    this.map.addControl(new maplibregl.ScaleControl({ unit: 'metric' }), 'bottom-left');
    this.popup = new maplibregl.Popup({ closeButton: false, closeOnClick: false, offset: 8 });
    this.loaded = new Promise((resolve) => this.map.once('load', resolve));
    this.map.on('click', (e) => this.click(e));
    this.map.on('mousemove', (e) => this.hover(e));
    this.map.on('mouseout', () => this.popup.remove());
  }

  childLayer() {
    return CHILD_LAYER[this.level];
  }

  /** Show ``code`` (of ``level``): fit its extent, emphasise its children. */
  async show(level, code) {
    await this.loaded;
    this.level = level;
    this.code = code;
    const child = this.childLayer();
    for (const layer of ['townships', 'villages', 'grids']) {
      this.map.setPaintProperty(`${layer}-fill`, 'fill-opacity', layer === child || (level === 'grid' && layer === 'grids') ? 0.6 : 0);
      // Only the current unit's descendants (a grid: itself) take part in clicks and colours.
      this.map.setFilter(`${layer}-fill`, ['==', ['slice', ['get', 'code'], 0, code.length], code]);
    }
    const own = OWN_LAYER[level];
    const outline = own === 'counties' ? null : own;
    if (outline) {
      this.map.removeLayer('current-line');
      this.map.addLayer(
        {
          id: 'current-line',
          type: 'line',
          source: outline,
          'source-layer': outline,
          filter: ['==', ['get', 'code'], code],
          paint: { 'line-color': '#1565c0', 'line-width': 3.5 },
        },
        'qa-fill',
      );
    } else {
      this.map.setFilter('current-line', ['==', ['get', 'code'], '']);
    }
    await this.fit(own, code);
  }

  async fit(collection, code) {
    try {
      const page = await request(`/ogc/collections/${collection}/items`, { code, limit: 1 });
      const feature = page.features && page.features[0];
      const box = feature && feature.geometry ? bbox(feature.geometry) : null;
      if (box) this.map.fitBounds(box, { padding: 24, animate: false, maxZoom: 17 });
    } catch (err) {
      this.handlers.status(`无法定位到 ${code}：${err.message}`);
    }
  }

  /** Colour the children by ``value(item)``: a colour per code (feature-state). */
  colourChildren(items, colourOf) {
    const layer = this.level === 'grid' ? 'grids' : this.childLayer();
    for (const source of ['townships', 'villages', 'grids']) {
      this.map.removeFeatureState({ source, sourceLayer: source });
    }
    this.colours = new Map();
    for (const item of items) {
      if (!item.code) continue;
      const colour = colourOf(item);
      this.colours.set(item.code, item);
      this.map.setFeatureState({ source: layer, sourceLayer: layer, id: item.code }, { colour });
    }
  }

  setIssues(collection) {
    this.map.getSource('issues').setData(collection);
  }

  setQa(collection) {
    this.map.getSource('qa').setData(collection || EMPTY);
  }

  visible(layerIds, on) {
    for (const id of layerIds) this.map.setLayoutProperty(id, 'visibility', on ? 'visible' : 'none');
  }

  pick(point, layers) {
    const present = layers.filter((id) => this.map.getLayer(id));
    return this.map.queryRenderedFeatures(point, { layers: present });
  }

  click(e) {
    const [hit] = this.pick(e.point, ['issues-point', 'households-point', 'households-cluster']);
    if (hit && hit.layer.id === 'issues-point') return this.handlers.issue(hit.properties.id);
    if (hit && hit.layer.id === 'households-point') return this.handlers.household(hit.id);
    if (hit && hit.layer.id === 'households-cluster') {
      return this.map.easeTo({ center: e.lngLat, zoom: Math.min(this.map.getZoom() + 2, 15) });
    }
    const child = this.childLayer();
    if (!child) return undefined;
    const [unit] = this.pick(e.point, [`${child}-fill`]);
    if (unit) return this.handlers.drill(unit.properties.code);
    return undefined;
  }

  hover(e) {
    const child = this.childLayer() || (this.level === 'grid' ? 'grids' : null);
    const hits = this.pick(e.point, ['issues-point', 'households-point', ...(child ? [`${child}-fill`] : [])]);
    this.map.getCanvas().style.cursor = hits.length ? 'pointer' : '';
    const hit = hits[0];
    if (!hit) return this.popup.remove();
    let html;
    if (hit.layer.id === 'issues-point') html = `事件 #${hit.properties.id}：${escapeHtml(hit.properties.title)}`;
    else if (hit.layer.id === 'households-point') html = `住户 #${hit.id}${hit.properties.tags ? `（${escapeHtml(hit.properties.tags)}）` : ''}<br>点击查看一户一档`;
    else {
      const item = this.colours.get(hit.properties.code);
      html = `${escapeHtml(hit.properties.name)}<br>${item ? this.handlers.describe(item) : ''}`;
    }
    this.popup.setLngLat(e.lngLat).setHTML(html).addTo(this.map);
    return undefined;
  }

  /** Resolves once the map has drawn everything it asked for. */
  idle() {
    return new Promise((resolve) => {
      if (this.map.loaded() && this.map.areTilesLoaded()) resolve();
      else this.map.once('idle', resolve);
    });
  }
}

export function bbox(geometry) {
  let x0 = Infinity;
  let y0 = Infinity;
  let x1 = -Infinity;
  let y1 = -Infinity;
  const walk = (c) => {
    if (typeof c[0] === 'number') {
      x0 = Math.min(x0, c[0]);
      y0 = Math.min(y0, c[1]);
      x1 = Math.max(x1, c[0]);
      y1 = Math.max(y1, c[1]);
    } else c.forEach(walk);
  };
  walk(geometry.coordinates);
  return Number.isFinite(x0) ? [[x0, y0], [x1, y1]] : null;
}

export function escapeHtml(s) {
  return String(s ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
}
