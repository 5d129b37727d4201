// Tests of the run report: metrics parsing, downsampling, chart specs, SVG/PNG rendering and report.html.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  type TestRecord,
  type TrainRecord,
  accuracyChartSpec,
  downsample,
  fontProblem,
  lossChartSpec,
  rasterize,
  readMetrics,
  renderPng,
  renderSvg,
  writeRunReport,
} from '../../cli/report.js';

const root = mkdtempSync(join(tmpdir(), 'streamgrad-report-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

let dirs = 0;
function runDir(lines: string[] | null): string {
  const dir = join(root, `run${dirs++}`);
  mkdirSync(dir);
  if (lines !== null) writeFileSync(join(dir, 'metrics.jsonl'), lines.length === 0 ? '' : `${lines.join('\n')}\n`);
  return dir;
}

/** `steps` training records of batch 32 (loss falling from ~2.5 to 0.25 at the end, accuracy rising), a test record every `every` steps. */
function synthetic(steps: number, every: number, classes = true): { train: TrainRecord[]; test: TestRecord[]; lines: string[] } {
  const train: TrainRecord[] = [];
  const test: TestRecord[] = [];
  const lines: string[] = [];
  for (let i = 0; i < steps; i++) {
    const samples = (i + 1) * 32;
    const last = i === steps - 1;
    const t: TrainRecord = {
      kind: 'train',
      step: i,
      epoch: Math.floor(i / every),
      samples,
      loss: last ? 0.25 : 0.25 + 2.25 * Math.exp(-i / (steps / 5)),
      accuracy: classes ? (last ? 0.9375 : Math.min(1, 0.1 + 0.85 * (1 - Math.exp(-i / (steps / 5))))) : null,
      seconds: samples / 1000,
      samplesPerSecond: 1000,
      lr: 0.01,
    };
    train.push(t);
    lines.push(JSON.stringify(t));
    if ((i + 1) % every === 0) {
      const e: TestRecord = { kind: 'test', step: i, epoch: t.epoch, samples, loss: last ? 0.3125 : t.loss + 0.1, accuracy: classes ? (last ? 0.9 : 0.8) : null };
      test.push(e);
      lines.push(JSON.stringify(e));
    }
  }
  return { train, test, lines };
}

/** A tag-balance check: every element opened is closed in order, and no bare `<` or `&` sits in text. */
function wellFormed(xml: string): boolean {
  const stack: string[] = [];
  const tags = /<(\/?)([A-Za-z][\w:.-]*)((?:\s+[\w:.-]+="[^"<]*")*)\s*(\/?)>/g;
  let at = 0;
  for (let m = tags.exec(xml); m !== null; m = tags.exec(xml)) {
    const text = xml.slice(at, m.index);
    if (/[<>]|&(?!(?:amp|lt|gt|quot|apos|#\d+|#x[0-9a-f]+);)/i.test(text)) return false;
    at = m.index + m[0].length;
    if (m[1] === '/') {
      if (stack.pop() !== m[2]) return false;
    } else if (m[4] !== '/') stack.push(m[2]!);
  }
  return stack.length === 0 && xml.slice(at).trim() === '';
}

function inkCounts(svg: string): { dark: number; white: number; total: number } {
  const px = rasterize(svg).pixels;
  let dark = 0;
  let white = 0;
  for (let i = 0; i < px.length; i += 4) {
    if (px[i]! < 80 && px[i + 1]! < 80 && px[i + 2]! < 80) dark++;
    if (px[i]! > 250 && px[i + 1]! > 250 && px[i + 2]! > 250) white++;
  }
  return { dark, white, total: px.length / 4 };
}

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

describe('readMetrics', () => {
  it('splits train and test records, keeping their fields; an empty last line and CRLF are fine', () => {
    const { train, test, lines } = synthetic(20, 10);
    const dir = runDir(null);
    const p = join(dir, 'metrics.jsonl');
    writeFileSync(p, `${lines.join('\r\n')}\r\n`);
    expect(readMetrics(p)).toEqual({ train, test });
    writeFileSync(p, lines.join('\n'));
    expect(readMetrics(p).train).toHaveLength(20);
    writeFileSync(p, '');
    expect(readMetrics(p)).toEqual({ train: [], test: [] });
  });

  it('ignores fields it does not know, so writers can add some', () => {
    const dir = runDir([JSON.stringify({ kind: 'test', step: 0, epoch: null, samples: 0, loss: 1, accuracy: null, gradNorm: 3 })]);
    expect(readMetrics(join(dir, 'metrics.jsonl')).test).toEqual([{ kind: 'test', step: 0, epoch: null, samples: 0, loss: 1, accuracy: null }]);
  });

  const good = JSON.stringify(synthetic(1, 10).train[0]);
  it.each([
    ['{"kind":"train","step":', 'not valid JSON (got "{\\"kind\\":\\"train\\",\\"step\\":")'],
    ['[1,2]', 'expected a JSON object (got [1,2])'],
    ['{"kind":"eval","step":0}', 'kind must be "train" or "test" (got "eval")'],
    ['{"step":0}', 'kind must be "train" or "test" (got undefined)'],
    ['{"kind":"test","step":0,"epoch":null,"samples":0,"accuracy":null}', "test record has no 'loss' (expected step, epoch, samples, loss, accuracy)"],
    [good.replace('"loss":', '"loss":"abc","x":'), `'loss' must be a finite number (got "abc")`],
    [good.replace('"loss":', '"loss":null,"x":'), "'loss' must be a finite number (got null)"],
    [good.replace('"accuracy":', '"accuracy":1.5,"x":'), "'accuracy' must be a number in [0, 1] or null (got 1.5)"],
    [good.replace('"step":0', '"step":0.5'), "'step' must be an integer >= 0 (got 0.5)"],
    [good.replace('"seconds":', '"seconds":-1,"x":'), "'seconds' must be a finite number >= 0 (got -1)"],
    ['', 'empty line (expected one JSON record per line)'],
  ])('line 2 %j is refused: %s', (line, message) => {
    const dir = runDir([good, line, good]);
    const p = join(dir, 'metrics.jsonl');
    expect(() => readMetrics(p)).toThrow(`${p} line 2: ${message}`);
  });

  it('names a missing file', () => {
    expect(() => readMetrics(join(root, 'nope.jsonl'))).toThrow(`metrics file '${join(root, 'nope.jsonl')}' does not exist`);
  });

  it('reads 10^5 training records', () => {
    const { lines } = synthetic(100_000, 10_000);
    const dir = runDir(lines);
    const m = readMetrics(join(dir, 'metrics.jsonl'));
    expect([m.train.length, m.test.length]).toEqual([100_000, 10]);
    expect(downsample(m.train).length).toBeLessThanOrEqual(500);
  });
});

describe('downsample and chart specs', () => {
  const { train, test } = synthetic(20_000, 2_000);

  it('keeps at most maxPoints points, ordered by samples, spanning the run, each a mean of its bucket', () => {
    const pts = downsample(train, 300);
    expect(pts.length).toBeLessThanOrEqual(300);
    expect(pts.length).toBeGreaterThan(290);
    expect(pts.every((p, i) => i === 0 || p.samples > pts[i - 1]!.samples)).toBe(true);
    expect(pts[0]!.samples).toBeLessThan(train[100]!.samples);
    expect(pts[pts.length - 1]!.samples).toBeGreaterThan(train[train.length - 100]!.samples);
    expect(pts[0]!.loss).toBeLessThan(train[0]!.loss);
    expect(pts[0]!.loss).toBeGreaterThan(train[100]!.loss);
    const flat = train.map((r) => ({ ...r, loss: 0.5, accuracy: null }));
    expect(downsample(flat, 300).every((p) => p.loss === 0.5 && p.accuracy === null)).toBe(true);
  });

  it('is deterministic and leaves short runs untouched', () => {
    expect(JSON.stringify(lossChartSpec({ train, test }))).toBe(JSON.stringify(lossChartSpec({ train: [...train], test: [...test] })));
    const few = train.slice(0, 7);
    expect(downsample(few)).toEqual(few.map((r) => ({ samples: r.samples, loss: r.loss, accuracy: r.accuracy })));
    expect(() => downsample(train, 0)).toThrow('downsample: maxPoints must be an integer >= 1 (got 0)');
    expect(() => lossChartSpec({ train: [], test: [] })).toThrow('lossChartSpec: metrics must hold at least one record (got none)');
  });

  it('the loss chart layers ≤ N training points and every test record, data inline, 640×320', () => {
    const spec = lossChartSpec({ train, test }, 200) as unknown as {
      title: string; width: number; height: number; layer: { data: { values: { samples: number; value: number; series: string }[] } }[];
    };
    expect([spec.title, spec.width, spec.height]).toEqual(['Loss', 640, 320]);
    expect(spec.layer.map((l) => l.data.values[0]!.series)).toEqual(['train', 'test']);
    expect(spec.layer[0]!.data.values.length).toBeLessThanOrEqual(200);
    expect(spec.layer[1]!.data.values).toEqual(test.map((r) => ({ samples: r.samples, value: r.loss, series: 'test' })));
    expect(JSON.stringify(spec)).not.toContain('"url"');
  });

  it('the accuracy chart runs from 0 to 100% and is null without accuracies', () => {
    const spec = accuracyChartSpec({ train, test }) as unknown as { title: string; encoding: { y: { scale: unknown; axis: unknown } } };
    expect(spec.title).toBe('Accuracy');
    expect(spec.encoding.y.scale).toEqual({ domain: [0, 1] });
    expect(spec.encoding.y.axis).toEqual({ format: '.0%' });
    const regression = synthetic(50, 10, false);
    expect(accuracyChartSpec(regression)).toBeNull();
  });
});

describe('renderSvg and renderPng', () => {
  const { train, test } = synthetic(400, 100);

  it('draws titles, axis titles, legend and text pixels', async () => {
    const svg = await renderSvg(accuracyChartSpec({ train, test })!);
    expect(svg.startsWith('<svg')).toBe(true);
    expect(wellFormed(svg)).toBe(true);
    for (const text of ['>Accuracy<', '>samples<', '>accuracy<', '>train<', '>test<', '>100%<']) expect(svg).toContain(text);
    const png = renderPng(svg);
    expect([...png.subarray(0, 8)]).toEqual(PNG_SIGNATURE);
    expect(png.length).toBeGreaterThan(20_000);
    // Only text is near-black (lines are blue/orange, grid and ticks grey): dark pixels mean the labels were drawn.
    const ink = inkCounts(svg);
    expect(ink.dark).toBeGreaterThan(300);
    expect(ink.white / ink.total).toBeGreaterThan(0.5);
  });

  it('refuses to draw charts without text when no font is available', () => {
    expect(fontProblem()).toBeNull();
    const svg = '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>';
    expect(() => renderPng(svg, { zoom: 0 })).toThrow('renderPng: zoom must be > 0 (got 0)');
    expect(() => renderPng(svg, { systemFonts: false })).toThrow(
      'renderPng: no font to draw chart text with (systemFonts is false and no fontFiles or fontDirs were given): install one (Debian: apt-get install fonts-dejavu-core) or pass fontFiles',
    );
    const empty = mkdtempSync(join(root, 'fonts-'));
    expect(fontProblem({ systemFonts: false, fontDirs: [empty] })).toBe(
      `no font to draw chart text with (tried fontDirs ["${empty}"]): install one (Debian: apt-get install fonts-dejavu-core) or pass fontFiles`,
    );
  });
});

describe('writeRunReport', () => {
  it('writes charts and a self-contained report.html with the summary and escaped config', async () => {
    const { lines } = synthetic(2_000, 500);
    const dir = runDir(lines);
    const r = await writeRunReport(dir, {
      title: 'MLP <b>run</b> & co',
      config: { model: 'mlp', note: '</pre><script>alert(1)</script>' },
      summary: { workers: 4, 'mode <x>': 'sync' },
    });
    expect(r.files).toEqual(['loss.svg', 'loss.png', 'accuracy.svg', 'accuracy.png', 'report.html'].map((f) => join(dir, f)));
    expect(r.warnings).toEqual([]);
    for (const f of r.files) expect(existsSync(f)).toBe(true);
    for (const f of ['loss', 'accuracy']) expect([...readFileSync(join(dir, `${f}.png`)).subarray(0, 8)]).toEqual(PNG_SIGNATURE);
    const loss = readFileSync(join(dir, 'loss.svg'), 'utf8');
    expect(wellFormed(loss)).toBe(true);
    for (const text of ['>Loss<', '>samples<', '>loss<']) expect(loss).toContain(text);

    const html = readFileSync(join(dir, 'report.html'), 'utf8');
    for (const row of [
      '<tr><th>final train loss</th><td>0.25</td></tr>',
      '<tr><th>final train accuracy</th><td>93.75%</td></tr>',
      '<tr><th>final test loss</th><td>0.3125</td></tr>',
      '<tr><th>final test accuracy</th><td>90.00%</td></tr>',
      '<tr><th>test evaluations</th><td>4</td></tr>',
      '<tr><th>samples</th><td>64,000</td></tr>',
      '<tr><th>duration</th><td>1 min 04 s</td></tr>',
      '<tr><th>samples/s</th><td>1,000</td></tr>',
      '<tr><th>workers</th><td>4</td></tr>',
      '<tr><th>mode &lt;x&gt;</th><td>sync</td></tr>',
    ]) expect(html).toContain(row);
    expect(html).toContain('<h1>MLP &lt;b&gt;run&lt;/b&gt; &amp; co</h1>');
    expect(html).toContain('&quot;note&quot;: &quot;&lt;/pre&gt;&lt;script&gt;alert(1)&lt;/script&gt;&quot;');
    expect(html).not.toMatch(/<script|<link|\ssrc=|url\(/i);
    expect(html).toContain(loss);
    expect(html).toContain(readFileSync(join(dir, 'accuracy.svg'), 'utf8'));
  });

  it('a regression run gets no accuracy chart, and the report says why', async () => {
    const dir = runDir(synthetic(300, 100, false).lines);
    writeFileSync(join(dir, 'accuracy.svg'), 'left from an earlier report');
    const r = await writeRunReport(dir);
    expect(r.files).toEqual(['loss.svg', 'loss.png', 'report.html'].map((f) => join(dir, f)));
    expect(existsSync(join(dir, 'accuracy.svg'))).toBe(false);
    const html = readFileSync(join(dir, 'report.html'), 'utf8');
    expect(html).toContain('<h2>Accuracy</h2>\n<p class="note">no accuracy: the targets are not class labels</p>');
    expect(html).not.toContain('final train accuracy');
    expect(html).toContain(`<title>Run report: run${dirs - 1}</title>`);
  });

  it('without a font it writes SVGs and HTML, no PNGs, and says why', async () => {
    const dir = runDir(synthetic(300, 100).lines);
    writeFileSync(join(dir, 'loss.png'), 'left from an earlier report');
    const r = await writeRunReport(dir, { png: { systemFonts: false } });
    expect(existsSync(join(dir, 'loss.png'))).toBe(false);
    expect(r.files).toEqual(['loss.svg', 'accuracy.svg', 'report.html'].map((f) => join(dir, f)));
    expect(r.warnings).toEqual([
      'PNG charts not written: no font to draw chart text with (systemFonts is false and no fontFiles or fontDirs were given): install one (Debian: apt-get install fonts-dejavu-core) or pass fontFiles',
    ]);
  });

  it('refuses folders that are not training runs', async () => {
    const missing = join(root, 'missing');
    await expect(writeRunReport(missing)).rejects.toThrow(`run folder '${missing}' does not exist`);
    const file = join(root, 'a-file');
    writeFileSync(file, '');
    await expect(writeRunReport(file)).rejects.toThrow(`run folder '${file}' is not a folder`);
    const bare = runDir(null);
    await expect(writeRunReport(bare)).rejects.toThrow(
      `run folder '${bare}' has no metrics.jsonl: it is not a training run folder (expected a folder made by streamgrad train)`,
    );
    const empty = runDir([]);
    await expect(writeRunReport(empty)).rejects.toThrow(`${join(empty, 'metrics.jsonl')} has no training records (the run stopped before its first step)`);
  });
});
