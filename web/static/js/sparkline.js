// Sparklines drawn on canvas: a line over the last few minutes, with the periods a breaker
// spent open or half-open shaded behind it. Colours come from the page's CSS custom
// properties, so the charts follow the light and dark themes. The module runs in the page
// and in the data worker (which draws the breaker grid's charts); only themeColors needs
// the page.

import { SPARK_WINDOW_MS } from './store.js';

let colors = null;
const dark = globalThis.matchMedia ? matchMedia('(prefers-color-scheme: dark)') : null;
if (dark) dark.addEventListener('change', () => { colors = null; });

// sparkWindow is five minutes, or less while the page has less history (at least one
// minute), so that a freshly opened page does not squeeze its data into a corner.
export function sparkWindow(times, now) {
  if (!times || !times.length) return SPARK_WINDOW_MS;
  return Math.min(SPARK_WINDOW_MS, Math.max(60000, now - times[0]));
}

// themeColors reads the chart colours of the current theme from the page's stylesheet.
export function themeColors() {
  if (!colors) {
    const cs = getComputedStyle(document.documentElement);
    const v = (name) => cs.getPropertyValue(name).trim();
    colors = {
      line: v('--spark-line'),
      fill: v('--spark-fill'),
      second: v('--spark-second'),
      open: v('--spark-open'),
      half: v('--spark-half'),
      base: v('--spark-base'),
      text: v('--text'),
      muted: v('--muted'),
    };
  }
  return colors;
}

// sizeCanvas gives the canvas a backing store of w x h CSS pixels at the screen's pixel
// ratio (dpr; the worker is told the page's), touching it only when the size changes (a
// resize clears the canvas).
export function sizeCanvas(canvas, w, h, dpr = globalThis.devicePixelRatio || 1) {
  const W = Math.max(1, Math.round(w * dpr));
  const H = Math.max(1, Math.round(h * dpr));
  if (canvas.width !== W) canvas.width = W;
  if (canvas.height !== H) canvas.height = H;
  return dpr;
}

// drawSpark draws values (aligned with times, epoch ms) over [now - windowMs, now] on a
// canvas of its own. states (optional, codes from store.STATE_CODE) shade open and
// half-open periods; second (optional) is a second series drawn dashed on a 0-100 scale.
// In the worker, c (the theme's colours) and dpr come from the page.
export function drawSpark(canvas, w, h, opts, c = themeColors(), dpr = undefined) {
  dpr = sizeCanvas(canvas, w, h, dpr);
  const ctx = canvas.getContext('2d');
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, w, h);
  drawSparkAt(ctx, w, h, opts, c);
}

// drawPerfCharts draws the cluster series of d (a perf view: times, cpu, mem, rps, eps)
// on charts ({ cpu: { canvas, width }, ... }), each height CSS px tall. The worker passes
// the page's colours and pixel ratio.
export function drawPerfCharts(d, charts, height, c = undefined, dpr = undefined) {
  if (!d.times) return;
  const now = Number.isFinite(d.time) ? d.time : Date.now();
  for (const k of ['cpu', 'mem', 'rps', 'eps']) {
    const ch = charts[k];
    if (ch && ch.width > 0) drawSpark(ch.canvas, ch.width, height, { times: d.times, values: d[k], now, windowMs: sparkWindow(d.times, now) }, c, dpr);
  }
}

// drawSparkAt draws into the current coordinate system of ctx, in (0,0)-(w,h): many
// sparklines share one canvas by translating between them. c is themeColors(), passed in
// where there is no page to read it from (the worker).
export function drawSparkAt(ctx, w, h, { times, values, states, second, now, windowMs, max }, c = themeColors()) {
  const n = times ? times.length : 0;
  const t0 = now - windowMs;
  const x = (t) => ((t - t0) / windowMs) * w;
  // A gap in time (a disconnect) breaks the line instead of drawing a slope across it.
  let step = 1000;
  if (n > 2) step = Math.max(250, (times[n - 1] - times[0]) / (n - 1));
  const gap = step * 3.5;

  if (states) {
    // One rectangle per run of the same shaded state, not one per point.
    const shade = (s) => (s === 3 || s === 4 ? c.open : s === 2 ? c.half : null);
    let runFill = null;
    let runX = 0;
    let runEnd = 0;
    const flush = () => {
      if (runFill && runEnd > 0) {
        ctx.fillStyle = runFill;
        ctx.fillRect(Math.max(0, runX), 0, Math.max(1, Math.min(w, runEnd) - Math.max(0, runX)), h);
      }
      runFill = null;
    };
    for (let i = 0; i < n; i++) {
      const fill = shade(states[i]);
      const x1 = x(times[i]);
      const next = i + 1 < n && times[i + 1] - times[i] < gap ? times[i + 1] : times[i] + step;
      if (fill !== runFill || (runFill && times[i] - times[i - 1] >= gap)) {
        flush();
        runFill = fill;
        runX = x1;
      }
      runEnd = x(next);
    }
    flush();
  }

  ctx.strokeStyle = c.base;
  ctx.lineWidth = 1;
  ctx.beginPath();
  ctx.moveTo(0, h - 0.5);
  ctx.lineTo(w, h - 0.5);
  ctx.stroke();

  let top = max;
  if (!(top > 0)) {
    top = 0;
    for (let i = 0; i < n; i++) if (values[i] > top) top = values[i];
    top = top > 0 ? top * 1.15 : 1;
  }
  line(ctx, times, values, n, x, (v) => h - 1 - (Math.min(v, top) / top) * (h - 3), gap, t0, c.line, c.fill, h);
  if (second) {
    ctx.setLineDash([3, 2]);
    line(ctx, times, second, n, x, (v) => h - 1 - (Math.min(v, 100) / 100) * (h - 3), gap, t0, c.second, null, h);
    ctx.setLineDash([]);
  }
}

function line(ctx, times, values, n, x, y, gap, t0, stroke, fill, h) {
  // Split into runs of consecutive known points; each run is one stroked (and filled) path.
  let run = null;
  const runs = [];
  for (let i = 0; i < n; i++) {
    const v = values[i];
    if (times[i] < t0 - gap || !Number.isFinite(v)) {
      run = null;
      continue;
    }
    if (run && times[i] - times[i - 1] > gap) run = null;
    const px = x(times[i]);
    if (!run) {
      run = [];
      runs.push(run);
    } else if (px - run[run.length - 2] < 1.5 && i + 1 < n) {
      continue; // several points in one pixel column draw nothing more
    }
    run.push(px, y(v));
  }
  ctx.lineWidth = 1.5;
  ctx.lineJoin = 'bevel';
  for (const r of runs) {
    const p = new Path2D();
    p.moveTo(r[0], r[1]);
    for (let i = 2; i < r.length; i += 2) p.lineTo(r[i], r[i + 1]);
    if (r.length === 2) p.lineTo(r[0] + 1, r[1]);
    if (fill) {
      const f = new Path2D(p);
      f.lineTo(r[r.length - 2], h);
      f.lineTo(r[0], h);
      f.closePath();
      ctx.fillStyle = fill;
      ctx.fill(f);
    }
    ctx.strokeStyle = stroke;
    ctx.stroke(p);
  }
}
