// The run report: reads a run folder's metrics.jsonl and writes loss/accuracy charts (SVG, PNG) and one self-contained report.html.
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { rename, rm, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { Resvg, type RenderedImage, type ResvgRenderOptions } from '@resvg/resvg-js';
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import { ValueError, checkInt, checkPositive, fmtValue } from '../src/errors.js';

/** One line of metrics.jsonl written after a training step. `samples` and `seconds` count from the start of the run. */
export interface TrainRecord {
  kind: 'train';
  step: number;
  epoch: number | null;
  /** Training samples applied so far. */
  samples: number;
  loss: number;
  /** Null when the targets are not class labels. */
  accuracy: number | null;
  /** Seconds since the run started. */
  seconds: number;
  /** Samples per second over the run so far. */
  samplesPerSecond: number;
  lr: number;
}

/** One line of metrics.jsonl written after an evaluation; `samples` is the training samples applied when it ran. */
export interface TestRecord {
  kind: 'test';
  step: number;
  epoch: number | null;
  samples: number;
  loss: number;
  accuracy: number | null;
}

export interface Metrics {
  train: TrainRecord[];
  test: TestRecord[];
}

/** A point of the downsampled training curve. */
export interface ChartPoint {
  samples: number;
  loss: number;
  accuracy: number | null;
}

/** How PNGs find fonts. resvg draws no text at all without one, so a missing font is an error, not blank axes. */
export interface PngOptions {
  /** Load the fonts the OS has (default true). */
  systemFonts?: boolean;
  fontFiles?: string[];
  fontDirs?: string[];
  /** Pixels per SVG unit (default 2, sharp on high-density screens). */
  zoom?: number;
}

export interface RunReportOptions {
  title?: string;
  config?: unknown;
  summary?: Record<string, string | number>;
  png?: PngOptions;
}

/** Training points per chart: enough for the curve's shape, few enough to keep the SVG small. */
export const MAX_POINTS = 500;

const COLORS = { train: '#4c78a8', test: '#f58518' } as const;
// The first name is what the PNG renderer finds on Debian; browsers viewing the SVG fall through to theirs.
const FONT = 'DejaVu Sans, Helvetica, Arial, sans-serif';
const NO_ACCURACY = 'no accuracy: the targets are not class labels';

type Field = 'int' | 'number' | 'nonneg' | 'fraction';
const TRAIN_FIELDS: [string, Field, boolean][] = [
  ['step', 'int', false],
  ['epoch', 'int', true],
  ['samples', 'int', false],
  ['loss', 'number', false],
  ['accuracy', 'fraction', true],
  ['seconds', 'nonneg', false],
  ['samplesPerSecond', 'nonneg', false],
  ['lr', 'number', false],
];
const TEST_FIELDS = TRAIN_FIELDS.filter(([name]) => name === 'step' || name === 'epoch' || name === 'samples' || name === 'loss' || name === 'accuracy');

const RULE: Record<Field, string> = {
  int: 'an integer >= 0',
  number: 'a finite number',
  nonneg: 'a finite number >= 0',
  fraction: 'a number in [0, 1]',
};

function fits(v: unknown, f: Field): boolean {
  if (typeof v !== 'number' || !Number.isFinite(v)) return false;
  if (f === 'int') return Number.isInteger(v) && v >= 0;
  if (f === 'nonneg') return v >= 0;
  if (f === 'fraction') return v >= 0 && v <= 1;
  return true;
}

function parseLine(text: string, where: string): TrainRecord | TestRecord {
  let o: unknown;
  try {
    o = JSON.parse(text);
  } catch {
    throw new ValueError(`${where}: not valid JSON (got ${fmtValue(text.length > 60 ? `${text.slice(0, 60)}…` : text)})`);
  }
  if (typeof o !== 'object' || o === null || Array.isArray(o)) throw new ValueError(`${where}: expected a JSON object (got ${fmtValue(o)})`);
  const rec = o as Record<string, unknown>;
  const kind = rec.kind;
  if (kind !== 'train' && kind !== 'test') throw new ValueError(`${where}: kind must be "train" or "test" (got ${fmtValue(kind)})`);
  const fields = kind === 'train' ? TRAIN_FIELDS : TEST_FIELDS;
  const out: Record<string, unknown> = { kind };
  for (const [name, f, nullable] of fields) {
    if (!(name in rec)) throw new ValueError(`${where}: ${kind} record has no '${name}' (expected ${fields.map(([n]) => n).join(', ')})`);
    const v = rec[name];
    if (!(fits(v, f) || (nullable && v === null))) {
      throw new ValueError(`${where}: '${name}' must be ${RULE[f]}${nullable ? ' or null' : ''} (got ${fmtValue(v)})`);
    }
    out[name] = v;
  }
  return out as unknown as TrainRecord | TestRecord;
}

/**
 * Reads a metrics.jsonl: one record per line, an empty last line allowed. Lines are cut from the bytes
 * one at a time, so a big file costs its records, not a second copy as one string and an array of lines.
 */
export function readMetrics(path: string): Metrics {
  let buf: Buffer;
  try {
    buf = readFileSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new ValueError(`metrics file '${path}' does not exist`);
    throw err;
  }
  const out: Metrics = { train: [], test: [] };
  let start = 0;
  for (let line = 1; start < buf.length; line++) {
    const nl = buf.indexOf(0x0a, start);
    const end = nl === -1 ? buf.length : nl;
    const text = buf.toString('utf8', start, end).replace(/\r$/, '');
    start = end + 1;
    if (text.trim() === '') {
      if (start >= buf.length) break;
      throw new ValueError(`${path} line ${line}: empty line (expected one JSON record per line)`);
    }
    const r = parseLine(text, `${path} line ${line}`);
    if (r.kind === 'train') out.train.push(r);
    else out.test.push(r);
  }
  return out;
}

/**
 * At most `maxPoints` points: training records fall into equal-width buckets of samples seen, and each
 * non-empty bucket becomes its mean. Depends only on the records, so the same file draws the same chart.
 */
export function downsample(train: readonly TrainRecord[], maxPoints = MAX_POINTS): ChartPoint[] {
  checkInt('downsample', 'maxPoints', maxPoints, 1);
  if (train.length <= maxPoints) return train.map((r) => ({ samples: r.samples, loss: r.loss, accuracy: r.accuracy }));
  let lo = Infinity;
  let hi = -Infinity;
  for (const r of train) {
    lo = Math.min(lo, r.samples);
    hi = Math.max(hi, r.samples);
  }
  const n = new Float64Array(maxPoints);
  const samples = new Float64Array(maxPoints);
  const loss = new Float64Array(maxPoints);
  const accN = new Float64Array(maxPoints);
  const acc = new Float64Array(maxPoints);
  const width = hi - lo;
  for (const r of train) {
    // The last record lands exactly on `hi`, which would be bucket maxPoints: clamp it into the last one.
    const b = width === 0 ? 0 : Math.min(maxPoints - 1, Math.floor(((r.samples - lo) / width) * maxPoints));
    n[b]! += 1;
    samples[b]! += r.samples;
    loss[b]! += r.loss;
    if (r.accuracy !== null) {
      accN[b]! += 1;
      acc[b]! += r.accuracy;
    }
  }
  const out: ChartPoint[] = [];
  for (let b = 0; b < maxPoints; b++) {
    if (n[b] === 0) continue;
    out.push({ samples: samples[b]! / n[b]!, loss: loss[b]! / n[b]!, accuracy: accN[b] === 0 ? null : acc[b]! / accN[b]! });
  }
  return out;
}

interface Curve {
  series: 'train' | 'test';
  values: { samples: number; value: number }[];
}

function curveSpec(title: string, yTitle: string, curves: Curve[], y: { domain?: [number, number]; format?: string }): TopLevelSpec {
  const present = curves.filter((c) => c.values.length > 0);
  const color = {
    field: 'series',
    type: 'nominal' as const,
    title: null,
    scale: { domain: present.map((c) => c.series), range: present.map((c) => COLORS[c.series]) },
    // Above the plot, not inside it: a curve can run through any corner (accuracy ends top-right, a stuck loss runs along the top).
    legend: { orient: 'top' as const, direction: 'horizontal' as const, symbolType: 'stroke', symbolStrokeWidth: 3 },
  };
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title,
    width: 640,
    height: 320,
    background: 'white',
    config: { font: FONT },
    encoding: {
      // SI prefixes keep 10^7 samples short; the tick step fixes one prefix for all ticks, so 0 would read "0k".
      x: { field: 'samples', type: 'quantitative', title: 'samples', axis: { labelExpr: "datum.value === 0 ? '0' : format(datum.value, '~s')" } },
      y: {
        field: 'value',
        type: 'quantitative',
        title: yTitle,
        scale: y.domain === undefined ? { zero: true } : { domain: y.domain },
        ...(y.format === undefined ? {} : { axis: { format: y.format } }),
      },
      color,
    },
    layer: present.map((c) => ({
      data: { values: c.values.map((v) => ({ ...v, series: c.series })) },
      // Test points are few and far apart, so each is marked; a lone training point needs a mark to show at all.
      mark: { type: 'line' as const, point: c.series === 'test' || c.values.length === 1, strokeWidth: c.series === 'test' ? 2 : 1.5 },
    })),
  };
}

/** The loss chart: training curve (downsampled) and every test record against samples seen. */
export function lossChartSpec(metrics: Metrics, maxPoints = MAX_POINTS): TopLevelSpec {
  if (metrics.train.length + metrics.test.length === 0) throw new ValueError('lossChartSpec: metrics must hold at least one record (got none)');
  return curveSpec('Loss', 'loss', [
    { series: 'train', values: downsample(metrics.train, maxPoints).map((p) => ({ samples: p.samples, value: p.loss })) },
    { series: 'test', values: metrics.test.map((r) => ({ samples: r.samples, value: r.loss })) },
  ], {});
}

/** The accuracy chart, or null when no record has an accuracy (a regression run). */
export function accuracyChartSpec(metrics: Metrics, maxPoints = MAX_POINTS): TopLevelSpec | null {
  const train = downsample(metrics.train, maxPoints).flatMap((p) => (p.accuracy === null ? [] : [{ samples: p.samples, value: p.accuracy }]));
  const test = metrics.test.flatMap((r) => (r.accuracy === null ? [] : [{ samples: r.samples, value: r.accuracy }]));
  if (train.length === 0 && test.length === 0) return null;
  return curveSpec('Accuracy', 'accuracy', [{ series: 'train', values: train }, { series: 'test', values: test }], { domain: [0, 1], format: '.0%' });
}

/** A vega-lite spec drawn to SVG headless: no canvas, no DOM, no network (data is inline). */
export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const { spec: vgSpec } = compile(spec);
  const view = new vega.View(vega.parse(vgSpec as vega.Spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

function resvgOptions(o: PngOptions, background: string | undefined): ResvgRenderOptions {
  return {
    ...(background === undefined ? {} : { background }),
    fitTo: { mode: 'zoom', value: o.zoom ?? 2 },
    font: { loadSystemFonts: o.systemFonts ?? true, fontFiles: o.fontFiles ?? [], fontDirs: o.fontDirs ?? [] },
    logLevel: 'off',
  };
}

const fontChecked = new Map<string, string | null>();

/**
 * Why chart text would not draw with these options, or null when it draws. resvg silently skips text it
 * has no font for, so we draw a word on a transparent canvas and look for ink.
 */
export function fontProblem(o: PngOptions = {}): string | null {
  const key = JSON.stringify([o.systemFonts ?? true, o.fontFiles ?? [], o.fontDirs ?? []]);
  const known = fontChecked.get(key);
  if (known !== undefined) return known;
  const probe = `<svg xmlns="http://www.w3.org/2000/svg" width="40" height="20"><text x="2" y="15" font-family="${FONT}" font-size="12">Ag</text></svg>`;
  const px = new Resvg(probe, resvgOptions({ ...o, zoom: 1 }, undefined)).render().pixels;
  let ink = false;
  for (let i = 3; i < px.length && !ink; i += 4) ink = px[i]! > 0;
  const files = o.fontFiles ?? [];
  const dirs = o.fontDirs ?? [];
  const tried = [
    ...(o.systemFonts ?? true ? ['the system fonts'] : []),
    ...(files.length > 0 ? [`fontFiles ${fmtValue(files)}`] : []),
    ...(dirs.length > 0 ? [`fontDirs ${fmtValue(dirs)}`] : []),
  ];
  const problem = ink
    ? null
    : `no font to draw chart text with (${tried.length === 0 ? 'systemFonts is false and no fontFiles or fontDirs were given' : `tried ${tried.join(', ')}`}): install one (Debian: apt-get install fonts-dejavu-core) or pass fontFiles`;
  fontChecked.set(key, problem);
  return problem;
}

/** An SVG drawn to pixels on white; throws a ValueError rather than drawing charts without their text. */
export function rasterize(svg: string, opts: PngOptions = {}): RenderedImage {
  if (opts.zoom !== undefined) checkPositive('renderPng', 'zoom', opts.zoom);
  const problem = fontProblem(opts);
  if (problem !== null) throw new ValueError(`renderPng: ${problem}`);
  return new Resvg(svg, resvgOptions(opts, 'white')).render();
}

/** An SVG as PNG bytes (white background, text drawn with a system font unless `opts` says otherwise). */
export function renderPng(svg: string, opts: PngOptions = {}): Buffer {
  return rasterize(svg, opts).asPng();
}

const ENTITIES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ENTITIES[c]!);
}

function fmtLoss(x: number): string {
  return String(Number(x.toPrecision(4)));
}

function fmtPercent(x: number): string {
  return `${(100 * x).toFixed(2)}%`;
}

function fmtCount(x: number): string {
  return Math.round(x).toLocaleString('en-US');
}

function fmtDuration(s: number): string {
  if (s < 60) return `${s.toFixed(1)} s`;
  const whole = Math.round(s);
  if (whole < 3600) return `${Math.floor(whole / 60)} min ${String(whole % 60).padStart(2, '0')} s`;
  return `${Math.floor(whole / 3600)} h ${String(Math.floor((whole % 3600) / 60)).padStart(2, '0')} min`;
}

/** The summary table's rows: last training record, last test record, then the caller's entries. */
function summaryRows(m: Metrics, extra: Record<string, string | number>): [string, string][] {
  const rows: [string, string][] = [];
  const t = m.train[m.train.length - 1]!;
  rows.push(['final train loss', fmtLoss(t.loss)]);
  if (t.accuracy !== null) rows.push(['final train accuracy', fmtPercent(t.accuracy)]);
  const e = m.test[m.test.length - 1];
  if (e !== undefined) {
    rows.push(['final test loss', fmtLoss(e.loss)]);
    if (e.accuracy !== null) rows.push(['final test accuracy', fmtPercent(e.accuracy)]);
  }
  rows.push(['test evaluations', fmtCount(m.test.length)]);
  rows.push(['samples', fmtCount(t.samples)]);
  rows.push(['duration', fmtDuration(t.seconds)]);
  rows.push(['samples/s', fmtCount(t.samplesPerSecond)]);
  for (const [k, v] of Object.entries(extra)) rows.push([k, String(v)]);
  return rows;
}

function configJson(config: unknown): string {
  try {
    return JSON.stringify(config, null, 2);
  } catch (err) {
    throw new ValueError(`writeRunReport: options.config must be JSON-serialisable (${(err as Error).message})`);
  }
}

const STYLE = `body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:60rem;padding:0 1rem;color:#222}
table{border-collapse:collapse}th,td{padding:.25rem .75rem;border-bottom:1px solid #ddd;text-align:left}
td{font-variant-numeric:tabular-nums}figure{margin:1rem 0}figure svg{max-width:100%;height:auto}
pre{background:#f6f6f6;padding:1rem;overflow:auto}.note{color:#666}`;

function reportHtml(title: string, m: Metrics, charts: { title: string; svg: string | null }[], opts: RunReportOptions): string {
  const rows = summaryRows(m, opts.summary ?? {})
    .map(([k, v]) => `<tr><th>${escapeHtml(k)}</th><td>${escapeHtml(v)}</td></tr>`)
    .join('\n');
  const sections = charts
    .map((c) => `<h2>${escapeHtml(c.title)}</h2>\n${c.svg === null ? `<p class="note">${escapeHtml(NO_ACCURACY)}</p>` : `<figure>${c.svg}</figure>`}`)
    .join('\n');
  const config = opts.config === undefined ? '' : `<h2>Config</h2>\n<pre>${escapeHtml(configJson(opts.config))}</pre>\n`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>${STYLE}</style>
</head>
<body>
<h1>${escapeHtml(title)}</h1>
<p class="note">${fmtCount(m.train.length)} training records, ${fmtCount(m.test.length)} test records</p>
<table>
${rows}
</table>
${sections}
${config}</body>
</html>
`;
}

/** Writes through a temp file and a rename, so a reader never sees half a file. */
async function writeAtomic(path: string, data: string | Buffer): Promise<void> {
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    await writeFile(tmp, data);
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

/**
 * Reads `<runDir>/metrics.jsonl` and writes loss.svg/png, accuracy.svg/png (class targets only) and
 * report.html into runDir. Without a font the PNGs are skipped and `warnings` says why: the SVGs and the
 * HTML need none, since the browser draws their text.
 */
export async function writeRunReport(runDir: string, opts: RunReportOptions = {}): Promise<{ files: string[]; warnings: string[] }> {
  if (!existsSync(runDir)) throw new ValueError(`run folder '${runDir}' does not exist`);
  if (!statSync(runDir).isDirectory()) throw new ValueError(`run folder '${runDir}' is not a folder`);
  const metricsPath = join(runDir, 'metrics.jsonl');
  if (!existsSync(metricsPath)) {
    throw new ValueError(`run folder '${runDir}' has no metrics.jsonl: it is not a training run folder (expected a folder made by streamgrad train)`);
  }
  const m = readMetrics(metricsPath);
  if (m.train.length === 0) throw new ValueError(`${metricsPath} has no training records (the run stopped before its first step)`);

  const specs = [
    { name: 'loss', title: 'Loss', spec: lossChartSpec(m) },
    { name: 'accuracy', title: 'Accuracy', spec: accuracyChartSpec(m) },
  ];
  const charts: { name: string; title: string; svg: string | null }[] = [];
  for (const c of specs) charts.push({ name: c.name, title: c.title, svg: c.spec === null ? null : await renderSvg(c.spec) });
  const html = reportHtml(opts.title ?? `Run report: ${basename(runDir)}`, m, charts, opts);

  const out: [string, string | Buffer][] = [];
  const warnings: string[] = [];
  const problem = fontProblem(opts.png);
  if (problem !== null) warnings.push(`PNG charts not written: ${problem}`);
  for (const c of charts) {
    if (c.svg === null) continue;
    out.push([`${c.name}.svg`, c.svg]);
    if (problem === null) out.push([`${c.name}.png`, renderPng(c.svg, opts.png)]);
  }
  out.push(['report.html', html]);

  // A chart left from an earlier report would contradict this one.
  const stale = ['accuracy.svg', 'accuracy.png', 'loss.png'].filter((f) => !out.some(([name]) => name === f));
  for (const f of stale) await rm(join(runDir, f), { force: true });
  for (const [name, data] of out) await writeAtomic(join(runDir, name), data);
  return { files: out.map(([name]) => join(runDir, name)), warnings };
}
