/* surfrec report: helpers shared by the fit and bench pages (no network access of any kind). */
window.SurfrecReport = (function () {
  'use strict';
  const TYPES = { f32: Float32Array, i32: Int32Array };

  function readData() {
    return JSON.parse(document.getElementById('report-data').textContent);
  }

  function base64Bytes(text) {
    const bin = atob(text);
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }

  async function gunzip(bytes) {
    if (typeof DecompressionStream === 'undefined') {
      throw new Error('this browser cannot unpack the embedded data (no DecompressionStream): ' +
                      'open the page in a current Chrome, Edge, Firefox or Safari');
    }
    const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream('gzip'));
    return new Uint8Array(await new Response(stream).arrayBuffer());
  }

  /* A packed array {dtype, enc, n, b64} -> typed array. */
  async function unpack(p) {
    let bytes = base64Bytes(p.b64);
    if (p.enc === 'gzip') bytes = await gunzip(bytes);
    return new TYPES[p.dtype](bytes.buffer, bytes.byteOffset, p.n);
  }

  /* Packed columns (x|y|z blocks) -> [x, y, z] views. */
  async function columns(p, n) {
    const a = await unpack(p);
    return [a.subarray(0, n), a.subarray(n, 2 * n), a.subarray(2 * n, 3 * n)];
  }

  async function mesh(p) {
    const [x, y, z] = await columns(p.xyz, p.n_vertices);
    const [i, j, k] = await columns(p.ijk, p.n_faces);
    const support = p.support ? await unpack(p.support) : null;
    return { x, y, z, i, j, k, support };
  }

  /* Area-weighted vertex normals (unit length). */
  function vertexNormals(m) {
    const nv = m.x.length, n = new Float32Array(3 * nv);
    for (let f = 0; f < m.i.length; f++) {
      const a = m.i[f], b = m.j[f], c = m.k[f];
      const ux = m.x[b] - m.x[a], uy = m.y[b] - m.y[a], uz = m.z[b] - m.z[a];
      const vx = m.x[c] - m.x[a], vy = m.y[c] - m.y[a], vz = m.z[c] - m.z[a];
      const nx = uy * vz - uz * vy, ny = uz * vx - ux * vz, nz = ux * vy - uy * vx;
      for (const q of [a, b, c]) { n[3 * q] += nx; n[3 * q + 1] += ny; n[3 * q + 2] += nz; }
    }
    for (let q = 0; q < nv; q++) {
      const l = Math.hypot(n[3 * q], n[3 * q + 1], n[3 * q + 2]) || 1;
      n[3 * q] /= l; n[3 * q + 1] /= l; n[3 * q + 2] /= l;
    }
    return n;
  }

  function diagonal(m) {
    const lo = [Infinity, Infinity, Infinity], hi = [-Infinity, -Infinity, -Infinity];
    [m.x, m.y, m.z].forEach((a, d) => { for (const v of a) { if (v < lo[d]) lo[d] = v; if (v > hi[d]) hi[d] = v; } });
    return Math.hypot(hi[0] - lo[0], hi[1] - lo[1], hi[2] - lo[2]) || 1;
  }

  /* Unique edges of a mesh as one polyline with NaN breaks (for a scatter3d 'lines' trace),
     lifted off the surface along the vertex normals so that the mesh does not hide them. */
  function wireframe(m, dx) {
    const nv = m.x.length, nf = m.i.length, keys = new Float64Array(3 * nf);
    const ids = [m.i, m.j, m.k];
    let c = 0;
    for (let f = 0; f < nf; f++) {
      for (let e = 0; e < 3; e++) {
        const a = ids[e][f], b = ids[(e + 1) % 3][f];
        keys[c++] = a < b ? a * nv + b : b * nv + a;
      }
    }
    keys.sort();
    let ne = 0;
    for (let t = 0; t < keys.length; t++) if (t === 0 || keys[t] !== keys[t - 1]) keys[ne++] = keys[t];
    const n = vertexNormals(m), lift = 0.003 * diagonal(m);
    const x = new Float32Array(3 * ne), y = new Float32Array(3 * ne), z = new Float32Array(3 * ne);
    const put = (o, q) => {
      x[o] = m.x[q] + lift * n[3 * q] + dx; y[o] = m.y[q] + lift * n[3 * q + 1]; z[o] = m.z[q] + lift * n[3 * q + 2];
    };
    for (let t = 0; t < ne; t++) {
      const a = Math.floor(keys[t] / nv), b = keys[t] - a * nv;
      put(3 * t, a); put(3 * t + 1, b);
      x[3 * t + 2] = NaN; y[3 * t + 2] = NaN; z[3 * t + 2] = NaN;
    }
    return { x, y, z, edges: ne };
  }

  function camera(up) {
    return up === 'z'
      ? { up: { x: 0, y: 0, z: 1 }, center: { x: 0, y: 0, z: 0 }, eye: { x: 1.5, y: -1.2, z: 0.8 } }
      : { up: { x: 0, y: 1, z: 0 }, center: { x: 0, y: 0, z: 0 }, eye: { x: 1.0, y: 0.7, z: 1.6 } };
  }

  function supportColorbar(scale, x) {
    return { title: { text: 'support (s)' }, tickvals: scale.tickvals, ticktext: scale.ticktext,
             len: 0.6, thickness: 14, x: x };
  }

  /* A mesh3d trace, coloured by its support map when it has one. */
  function meshTrace(m, scale, opts) {
    const t = { type: 'mesh3d', x: m.x, y: m.y, z: m.z, i: m.i, j: m.j, k: m.k, name: opts.name,
                flatshading: false, hoverinfo: 'skip', showlegend: true,
                lighting: { ambient: 0.65, diffuse: 0.6, specular: 0.08, roughness: 0.8 } };
    if (m.support && !opts.plain) {
      Object.assign(t, { intensity: m.support, intensitymode: 'vertex', colorscale: scale.colorscale,
                         cmin: 0, cmax: scale.cmax, showscale: opts.showscale !== false,
                         colorbar: supportColorbar(scale, opts.colorbarX || 1.0) });
    } else {
      Object.assign(t, { color: opts.color || 'rgb(191,199,217)', showscale: false });
    }
    return t;
  }

  /* Rotate / zoom one scene and the others follow (each plot's 'scene.camera'). */
  function linkCameras(plots) {
    let busy = false;
    const follow = (src, ev) => {
      const cam = ev && ev['scene.camera'];
      if (busy || !cam) return;
      busy = true;
      const same = p => JSON.stringify(p.layout.scene && p.layout.scene.camera) === JSON.stringify(cam);
      const others = plots.filter(p => p !== src && !same(p)).map(p => Plotly.relayout(p, { 'scene.camera': cam }));
      Promise.all(others).finally(() => { busy = false; });
    };
    plots.forEach(p => {
      p.on('plotly_relayout', ev => follow(p, ev));
      p.on('plotly_relayouting', ev => follow(p, ev));
    });
  }

  function showError(err) {
    const box = document.getElementById('report-error');
    box.textContent = 'The report could not be drawn: ' + (err && err.message ? err.message : err);
    box.style.display = 'block';
    document.body.dataset.ready = 'error';
    console.error(err);
  }

  /* Run the page's async main; body[data-ready] becomes "1" when everything is drawn. */
  function run(main) {
    const go = () => main().then(() => { document.body.dataset.ready = '1'; }, showError);
    if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', go);
    else go();
  }

  const CONFIG = { displaylogo: false, responsive: true, showLink: false, showSendToCloud: false };
  return { readData, unpack, columns, mesh, wireframe, camera, meshTrace, linkCameras, run, CONFIG };
})();
