/**
 * Charts for the benchmark reports: a Vega-Lite spec rendered to SVG headlessly
 * (vega's SVG renderer needs no canvas), written next to the docs.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import { repoRoot } from '../../infra/index.js';

/** Renders `spec` to docs/<file> and returns the path relative to docs/. */
export async function writeChart(file: string, spec: TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  const svg = await view.toSVG();
  view.finalize();
  writeFileSync(join(repoRoot, 'docs', file), `${svg}\n`);
  return file;
}
