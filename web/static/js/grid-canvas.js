// The breaker grid's canvas: every visible tile's sparkline and its two figures that change
// every second (failure rate and volume), drawn on one canvas over the rows in view. The
// data worker draws it (OffscreenCanvas) and hands the page a finished bitmap with the
// tiles it belongs to, so the page's main thread only shows it; drawGrid is also what the
// page uses where a worker cannot draw.
//
// g is the grid's geometry as the page measured it: cols, tileW, rowH, gap, width (CSS
// px), dpr, spark and nums (the chart's and the figures' boxes inside a tile: x, y, w, h),
// font (of the figures), colors (themeColors()) and seq (which geometry this is).

import { drawSparkAt, sparkWindow } from './sparkline.js';
import { fmtPercent, fmtRate } from './format.js';

// gridBox is the part of the grid the canvas covers for the tiles of d: from the first
// tile's row to the last one's, in CSS px.
export function gridBox(g, d) {
  const row0 = Math.floor(d.offset / g.cols);
  const rows = Math.ceil((d.offset + d.tiles.length) / g.cols) - row0;
  return { row0, top: row0 * g.rowH, width: g.width, height: rows * g.rowH };
}

// drawGrid draws the tiles of d (a grid view: offset, tiles, times, time) on ctx, whose
// backing store covers gridBox(g, d) at g.dpr.
export function drawGrid(ctx, g, d) {
  const box = gridBox(g, d);
  const dpr = g.dpr;
  const c = g.colors;
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, box.width, box.height);
  const now = Number.isFinite(d.time) ? d.time : Date.now();
  const windowMs = sparkWindow(d.times, now);
  ctx.font = g.font;
  for (let i = 0; i < d.tiles.length; i++) {
    const t = d.tiles[i];
    const index = d.offset + i;
    const x = (index % g.cols) * (g.tileW + g.gap);
    const y = (Math.floor(index / g.cols) - box.row0) * g.rowH;
    if (t.rateHist) {
      ctx.setTransform(dpr, 0, 0, dpr, (x + g.spark.x) * dpr, (y + g.spark.y) * dpr);
      drawSparkAt(ctx, g.spark.w, g.spark.h, {
        times: d.times, values: t.rateHist, states: t.stateHist, second: t.failHist, now, windowMs,
      }, c);
    }
    drawFigures(ctx, g, dpr, x + g.nums.x, y + g.nums.y, t, now, c);
  }
}

// drawFigures writes a tile's failure rate and volume, right-aligned in the tile's figures
// box; a tile whose values are older than the last few seconds says so.
function drawFigures(ctx, g, dpr, x, y, t, now, c) {
  const age = Number.isFinite(t.updated) ? now - t.updated : NaN;
  const lag = age > 5000;
  ctx.setTransform(dpr, 0, 0, dpr, x * dpr, y * dpr);
  ctx.textAlign = 'right';
  ctx.textBaseline = 'middle';
  ctx.fillStyle = lag ? c.muted : c.text;
  // maxWidth narrows the text rather than letting it run into the pod count.
  ctx.fillText((lag ? '\u25f7 ' : '') + 'fail ' + fmtPercent(t.failureRate) + '\u2002' + fmtRate(t.rate), g.nums.w, g.nums.h / 2 + 0.5, g.nums.w);
}

// GridPainter draws grid bitmaps in the worker: one OffscreenCanvas, resized as needed,
// whose bitmap is handed over (transferToImageBitmap leaves it blank for the next one).
export class GridPainter {
  constructor() {
    this.canvas = null;
    this.geom = null;
  }

  static supported() {
    return typeof OffscreenCanvas === 'function';
  }

  // paint returns { bitmap, seq, top, width, height } for d, or null when there is no
  // geometry yet or nothing to draw. The bitmap is meant to be transferred to the page.
  paint(d) {
    const g = this.geom;
    if (!g || !d.tiles.length) return null;
    const box = gridBox(g, d);
    const W = Math.max(1, Math.round(box.width * g.dpr));
    const H = Math.max(1, Math.round(box.height * g.dpr));
    if (!this.canvas) this.canvas = new OffscreenCanvas(W, H);
    if (this.canvas.width !== W) this.canvas.width = W;
    if (this.canvas.height !== H) this.canvas.height = H;
    drawGrid(this.canvas.getContext('2d'), g, d);
    return { bitmap: this.canvas.transferToImageBitmap(), seq: g.seq, top: box.top, width: box.width, height: box.height };
  }
}
