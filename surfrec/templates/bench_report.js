/* surfrec bench page: a click on a table cell opens that case, every method side by side. */
(function () {
  'use strict';
  const R = window.SurfrecReport;
  const D = R.readData();
  let plots = [];

  function sceneLayout(bounds) {
    const [lo, hi] = bounds, span = [0, 1, 2].map(d => (hi[d] - lo[d]) || 1), pad = 0.02;
    const big = Math.max(...span);
    const axis = (d, name) => ({ title: { text: name }, range: [lo[d] - pad * big, hi[d] + pad * big] });
    return { aspectmode: 'manual', aspectratio: { x: span[0] / big, y: span[1] / big, z: span[2] / big },
             xaxis: axis(0, 'x'), yaxis: axis(1, 'y'), zaxis: axis(2, 'z'), camera: R.camera(D.up) };
  }

  /* The heading and the (empty) plot element of one method's view. */
  function sceneCell(parent, c, method) {
    const cell = document.createElement('div');
    cell.className = 'scene-cell';
    const head = document.createElement('h3');
    const p = D.meshes[c][method];
    head.textContent = method + (p && p.note ? ' (' + p.note + ')' : '');
    const gd = document.createElement('div');
    gd.className = 'viewer-plot';
    gd.dataset.method = method;
    if (!p) gd.textContent = 'no mesh';
    cell.append(head, gd);
    parent.append(cell);
    return p ? gd : null;
  }

  async function plotScene(gd, c) {
    const m = await R.mesh(D.meshes[c][gd.dataset.method]);
    const trace = R.meshTrace(m, D.support_scale, { name: gd.dataset.method, showscale: false });
    await Plotly.newPlot(gd, [trace], { margin: { l: 0, r: 0, t: 0, b: 0 }, showlegend: false,
                                        scene: sceneLayout(D.bounds[c]) }, R.CONFIG);
    return gd;
  }

  async function openCase(c) {
    if (document.body.dataset.viewer === c) return;
    document.body.dataset.viewer = '';
    plots.forEach(gd => Plotly.purge(gd));
    const grid = document.getElementById('viewer-grid');
    grid.replaceChildren();
    document.getElementById('viewer-title').textContent = c;
    document.querySelectorAll('#bench-table td.cell')
      .forEach(td => td.classList.toggle('current', td.dataset.case === c));
    const section = document.getElementById('viewer');
    section.hidden = false;
    // lay out every cell first, so that each plot is drawn at its final size
    const cells = D.methods.filter(m => m in D.meshes[c]).map(m => sceneCell(grid, c, m)).filter(Boolean);
    plots = [];
    for (const gd of cells) plots.push(await plotScene(gd, c));
    R.linkCameras(plots);
    document.body.dataset.viewer = c;
    section.scrollIntoView({ behavior: 'smooth', block: 'start' });
  }

  function bind() {
    const open = c => openCase(c).catch(err => console.error(err));
    document.querySelectorAll('#bench-table td.cell:not(.nomesh)').forEach(td => {
      td.addEventListener('click', () => open(td.dataset.case));
      td.addEventListener('keydown', ev => { if (ev.key === 'Enter' || ev.key === ' ') open(td.dataset.case); });
    });
    document.getElementById('viewer-reset').addEventListener('click', () => {
      plots.forEach(gd => Plotly.relayout(gd, { 'scene.camera': R.camera(D.up) }));
    });
  }

  R.run(async () => { bind(); });
})();
