// Bundles the explorer into one JS and one CSS file with content hashes in their names, and writes index.html
// pointing at them. Usage: node build.mjs OUTDIR (the Maven build passes target/classes/ui).
import * as esbuild from 'esbuild';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';

const outdir = process.argv[2] || 'dist';
rmSync(outdir, { recursive: true, force: true });
mkdirSync(outdir, { recursive: true });
const result = await esbuild.build({
  entryPoints: ['src/main.js', 'src/style.css'],
  bundle: true,
  minify: true,
  format: 'esm',
  target: ['chrome110', 'firefox115', 'safari16'],
  entryNames: '[name]-[hash]',
  outdir,
  metafile: true,
  legalComments: 'none',
  logLevel: 'warning',
});
const outputs = Object.keys(result.metafile.outputs).map((p) => basename(p));
const js = outputs.find((f) => f.endsWith('.js'));
const css = outputs.find((f) => f.endsWith('.css'));
const html = readFileSync('src/index.html', 'utf8').replace('%CSS%', css).replace('%JS%', js);
writeFileSync(join(outdir, 'index.html'), html);
writeFileSync(join(outdir, 'favicon.svg'), readFileSync('src/favicon.svg'));
if (process.env.UI_BUILD_VERBOSE) console.log(`explorer: ${outdir}/{index.html, ${js}, ${css}}`);
