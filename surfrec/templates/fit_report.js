/* surfrec fit report: the 3D view and the fit's charts (data from #report-data). */
(function () {
  'use strict';
  const R = window.SurfrecReport;
  const D = R.readData();
  const state = { mode: 'refined', scan: false, samples: false, wire: false };
  const G = {};            // decoded geometry
  const wires = {};        // wireframes, built on first use

  async function load() {
    G.mesh = await R.mesh(D.mesh);
    if (D.raw) G.raw = await R.mesh(D.raw);
    if (D.scan) G.scan = await R.columns(D.scan.xyz, D.scan.n);
    if (D.samples) {
      G.samples = await R.columns(D.samples.xyz, D.samples.n);
      G.logres = await R.unpack(D.samples.logres);
    }
    // "both": the raw level set beside the refined mesh, shifted along x
    let lo = Infinity, hi = -Infinity;
    for (const v of G.mesh.x) { if (v < lo) lo = v; if (v > hi) hi = v; }
    G.shift = 1.15 * (hi - lo || 1);
  }

  function shifted(m, dx) {
    if (!dx) return m;
    if (!m.shiftedX) m.shiftedX = m.x.map(v => v + dx);
    return Object.assign({}, m, { x: m.shiftedX });
  }

  function wire(key, m, dx, name) {
    const id = key + ':' + dx;
    if (!wires[id]) wires[id] = R.wireframe(m, dx);
    const w = wires[id];
    return { type: 'scatter3d', mode: 'lines', x: w.x, y: w.y, z: w.z, name: name,
             line: { color: 'rgba(30,35,45,0.55)', width: 1 }, hoverinfo: 'skip', connectgaps: false };
  }

  function meshTraces() {
    const out = [], showRefined = state.mode !== 'raw', showRaw = state.mode !== 'refined' && G.raw;
    const dx = state.mode === 'both' ? G.shift : 0;
    if (showRefined) out.push(R.meshTrace(G.mesh, D.support_scale, { name: 'refined mesh' }));
    if (showRaw) out.push(R.meshTrace(shifted(G.raw, dx), D.support_scale,
                                      { name: 'raw level set of F', plain: true, color: 'rgb(200,190,170)' }));
    if (state.wire && showRefined) out.push(wire('mesh', G.mesh, 0, 'wireframe'));
    if (state.wire && showRaw) out.push(wire('raw', G.raw, dx, 'wireframe (raw)'));
    return out;
  }

  function pointTraces() {
    const out = [];
    if (state.scan && G.scan) {
      out.push({ type: 'scatter3d', mode: 'markers', x: G.scan[0], y: G.scan[1], z: G.scan[2],
                 name: 'scan (' + D.scan.n.toLocaleString() + ' points)', hoverinfo: 'skip',
                 marker: { size: 1.6, color: 'rgb(40,90,200)', opacity: 0.8 } });
    }
    if (state.samples && G.samples) {
      const s = D.samples;
      out.push({ type: 'scatter3d', mode: 'markers', x: G.samples[0], y: G.samples[1], z: G.samples[2],
                 name: 'level-set samples', hoverinfo: 'skip',
                 marker: { size: 2, color: G.logres, colorscale: 'Viridis', cmin: s.cmin, cmax: s.cmax,
                           showscale: true,
                           colorbar: { title: { text: '|F(p) − c|' }, tickvals: s.tickvals, ticktext: s.ticktext,
                                       x: -0.02, xanchor: 'right', len: 0.6, thickness: 14 } } });
    }
    return out;
  }

  function layout3d() {
    return { uirevision: 'keep', margin: { l: 0, r: 0, t: 0, b: 0 }, showlegend: true,
             legend: { x: 0.01, y: 0.99, bgcolor: 'rgba(255,255,255,0.7)' },
             scene: { aspectmode: 'data', camera: R.camera(D.up), uirevision: 'keep',
                      xaxis: { title: { text: 'x' } }, yaxis: { title: { text: 'y' } },
                      zaxis: { title: { text: 'z' } } } };
  }

  async function draw3d() {
    const gd = document.getElementById('view');
    await Plotly.react(gd, meshTraces().concat(pointTraces()), layout3d(), R.CONFIG);
    gd.dataset.traces = String(gd.data.length);
    gd.dataset.draws = String((Number(gd.dataset.draws) || 0) + 1);  // a hook for tests
  }

  function bindControls() {
    const status = document.getElementById('view-status');
    const redraw = async () => {
      status.textContent = 'drawing\u2026';
      await new Promise(done => setTimeout(done, 30));  // let the browser show it first
      try { await draw3d(); } catch (err) { console.error(err); }
      status.textContent = '';
    };
    const bind = (id, key) => {
      document.getElementById(id).addEventListener('change', ev => { state[key] = ev.target.checked; redraw(); });
    };
    bind('show-scan', 'scan');
    bind('show-samples', 'samples');
    bind('show-wire', 'wire');
    document.getElementById('mesh-mode').addEventListener('change', ev => { state.mode = ev.target.value; redraw(); });
    document.getElementById('reset-view').addEventListener('click', () => {
      Plotly.relayout('view', { 'scene.camera': R.camera(D.up) });
    });
  }

  function lineChart(id, title, x, series, xTitle, y2) {
    const traces = Object.entries(series).map(([name, y]) => ({ type: 'scatter', mode: 'lines', x, y, name }));
    if (y2) traces.push({ type: 'scatter', mode: 'lines', x, y: y2.y, name: y2.name, yaxis: 'y2',
                          line: { dash: 'dot', color: 'rgb(120,120,120)' } });
    const layout = { title: { text: title }, margin: { l: 60, r: y2 ? 60 : 20, t: 40, b: 45 },
                     xaxis: { title: { text: xTitle } }, yaxis: { type: 'log', exponentformat: 'power' },
                     legend: { orientation: 'h', y: -0.25 } };
    if (y2) layout.yaxis2 = { overlaying: 'y', side: 'right', range: [0, 1.02], tickmode: 'auto', tickformat: '.0%',
                                  showgrid: false, title: { text: y2.name } };
    return Plotly.newPlot(id, traces, layout, R.CONFIG);
  }

  function charts() {
    const jobs = [], h = D.history, n = D.newton, t = D.timings;
    if (h) {
      jobs.push(lineChart('chart-loss', 'Loss terms (log)', h.step, h.loss, 'step'));
      jobs.push(lineChart('chart-residual', 'Sample residuals |F(p) − c| (log)', h.step, h.residual, 'step',
                          h.converged ? { name: 'converged share', y: h.converged } : null));
    }
    if (n) {
      jobs.push(lineChart('chart-newton', 'Residual after k Newton steps (log)', n.k,
                          { median: n.median, p90: n.p90 }, 'Newton steps k',
                          { name: 'converged share', y: n.converged }));
    }
    if (t) {
      const text = t.seconds.map(s => s === null ? 'n/a' : s.toFixed(s < 10 ? 2 : 1) + ' s');
      jobs.push(Plotly.newPlot('chart-timings', [{ type: 'bar', orientation: 'h', y: t.stage, x: t.seconds, text,
                                                  textposition: 'auto', marker: { color: 'rgb(42,111,219)' } }],
                               { title: { text: 'Stage times (total ' + t.total.toFixed(1) + ' s)' },
                                 margin: { l: 90, r: 20, t: 40, b: 40 }, xaxis: { title: { text: 'seconds' } },
                                 yaxis: { autorange: 'reversed', automargin: true } }, R.CONFIG));
    }
    return Promise.all(jobs);
  }

  R.run(async () => {
    await load();
    await draw3d();
    bindControls();
    await charts();
  });
})();
