/**
 * A hand-made SVG of the scaling curves: two small panels side by side
 * (tasks/s against worker processes, and against one worker's concurrency
 * on a log2 axis), median as a line, min-max as whiskers. No dependencies.
 */
import { format } from './results.js';

export interface Point {
  x: number;
  median: number;
  min: number;
  max: number;
}

export interface Panel {
  title: string;
  xLabel: string;
  log2?: boolean;
  points: Point[];
}

const W = 360;
const H = 260;
const M = { left: 62, right: 28, top: 34, bottom: 46 };

/** A round tick step (1, 2, 2.5 or 5 × 10^k) giving about four intervals up to `v`. */
function niceStep(v: number): number {
  if (!(v > 0)) return 1;
  const raw = v / 4;
  const p = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= raw) return m * p;
  return 10 * p;
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

function panel(p: Panel, offsetX: number): string {
  const pw = W - M.left - M.right;
  const ph = H - M.top - M.bottom;
  const xs = p.points.map((pt) => (p.log2 ? Math.log2(pt.x) : pt.x));
  const xMin = Math.min(...xs);
  const xMax = Math.max(...xs);
  const step = niceStep(Math.max(...p.points.map((pt) => pt.max)));
  const ticks = Math.ceil(Math.max(...p.points.map((pt) => pt.max)) / step);
  const yMax = step * Math.max(ticks, 1);
  // Points sit a little inside the axes, so a whisker never hides behind the y axis.
  const pad = 16;
  const sx = (x: number) =>
    M.left + pad + (xMax === xMin ? (pw - 2 * pad) / 2 : ((x - xMin) / (xMax - xMin)) * (pw - 2 * pad));
  const sy = (y: number) => M.top + ph - (y / yMax) * ph;
  const out: string[] = [`<g transform="translate(${offsetX},0)">`];
  out.push(`<text x="${M.left + pw / 2}" y="20" text-anchor="middle" font-weight="bold">${esc(p.title)}</text>`);
  // Grid and y ticks.
  for (let i = 0; i <= Math.max(ticks, 1); i++) {
    const v = step * i;
    const y = sy(v);
    out.push(`<line x1="${M.left}" y1="${y}" x2="${M.left + pw}" y2="${y}" stroke="#ddd"/>`);
    out.push(`<text x="${M.left - 6}" y="${y + 4}" text-anchor="end">${format(v)}</text>`);
  }
  out.push(
    `<line x1="${M.left}" y1="${M.top}" x2="${M.left}" y2="${M.top + ph}" stroke="#333"/>`,
    `<line x1="${M.left}" y1="${M.top + ph}" x2="${M.left + pw}" y2="${M.top + ph}" stroke="#333"/>`,
  );
  p.points.forEach((pt, i) => {
    const x = sx(xs[i]!);
    out.push(`<line x1="${x}" y1="${sy(pt.min)}" x2="${x}" y2="${sy(pt.max)}" stroke="#1f6feb" stroke-width="1.5"/>`);
  });
  // x labels from the right, skipping one that would touch its right neighbour (50 beside 64).
  let lastLabel = Infinity;
  for (let i = p.points.length - 1; i >= 0; i--) {
    const x = sx(xs[i]!);
    if (lastLabel - x < 24) continue;
    lastLabel = x;
    out.push(`<text x="${x}" y="${M.top + ph + 16}" text-anchor="middle">${p.points[i]!.x}</text>`);
  }
  const path = p.points.map((pt, i) => `${i === 0 ? 'M' : 'L'}${sx(xs[i]!)},${sy(pt.median)}`).join(' ');
  out.push(`<path d="${path}" fill="none" stroke="#1f6feb" stroke-width="2"/>`);
  p.points.forEach((pt, i) => {
    out.push(
      `<circle cx="${sx(xs[i]!)}" cy="${sy(pt.median)}" r="3.5" fill="#1f6feb"><title>${format(pt.median)} tasks/s</title></circle>`,
    );
  });
  out.push(`<text x="${M.left + pw / 2}" y="${H - 10}" text-anchor="middle">${esc(p.xLabel)}</text>`);
  out.push(
    `<text transform="translate(14,${M.top + ph / 2}) rotate(-90)" text-anchor="middle">tasks/s (median, min–max)</text>`,
  );
  out.push('</g>');
  return out.join('\n');
}

export function scalingSvg(panels: readonly Panel[], caption: string): string {
  const width = W * panels.length;
  const height = H + 22;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    ...panels.filter((p) => p.points.length > 0).map((p, i) => panel(p, i * W)),
    `<text x="${width / 2}" y="${height - 6}" text-anchor="middle" fill="#555">${esc(caption)}</text>`,
    '</svg>',
    '',
  ].join('\n');
}
