// Decodes Mapbox Vector Tiles with @mapbox/vector-tile (the decoder MapLibre is built on), an
// implementation independent of the server's encoder, and prints what it read as JSON for the
// Rust tests to check: usage `node web/test/decode-tile.mjs TILE.mvt [...]`.
//
// Output: one object per file: { file, layers: [{ name, version, extent, length, keys, values,
// features: [{ id, type, properties, geometry: [[[x, y], ...], ...] }] }] }. Rings are as the
// decoder returns them (closed by ClosePath: the first point repeated at the end).
import { readFileSync } from 'node:fs';
import { VectorTile } from '@mapbox/vector-tile';
import { PbfReader } from 'pbf';

const out = [];
for (const file of process.argv.slice(2)) {
  const tile = new VectorTile(new PbfReader(readFileSync(file)));
  const layers = [];
  for (const [name, layer] of Object.entries(tile.layers)) {
    const features = [];
    for (let i = 0; i < layer.length; i++) {
      const f = layer.feature(i);
      features.push({
        id: f.id ?? null,
        type: f.type,
        properties: f.properties,
        geometry: f.loadGeometry().map((ring) => ring.map((p) => [p.x, p.y])),
      });
    }
    layers.push({
      name,
      version: layer.version,
      extent: layer.extent,
      length: layer.length,
      keys: layer._keys,
      values: layer._values,
      features,
    });
  }
  out.push({ file, layers });
}
process.stdout.write(JSON.stringify(out));
