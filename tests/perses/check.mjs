// Checks Perses dashboards and datasources with Perses' own published packages (package.json pins them):
// - the zod schemas of @perses-dev/core: names, durations, panels, variables, datasources (the envelope:
//   core types each plugin's spec only as "an object");
// - each plugin's spec against the options type its plugin package exports, with tsc: every input becomes
//   a .ts file whose object literal must satisfy types.ts, so an unknown field, a wrong enum value (a
//   unit, a legend position, a calculation) or a missing required field fails;
// - what neither sees: each layout item's $ref names a panel and each panel is laid out, the grid is 24
//   columns wide, every $variable a query uses is defined.
//
//   node check.mjs FILE.json...
// A FILE is a Perses `Dashboard` resource, or a `PersesDashboard` or `PersesDatasource` (perses.dev/v1alpha2)
// as JSON. Prints "FILE: where: what" for each problem and exits 1 if there is one.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const core = createRequire(import.meta.url)('@perses-dev/core');

const GRID = 24;
// Interpolated by Perses itself: the dashboard's (VariableProvider) and the Prometheus plugin's.
const BUILTINS = new Set(['__from', '__to', '__range', '__range_s', '__range_ms', '__dashboard', '__project',
  '__interval', '__interval_ms', '__rate_interval']);

function zod(schema, value, where) {
  const result = schema.safeParse(value);
  return result.success ? [] : result.error.issues.map((i) => `${[where, ...i.path].join('.')}: ${i.message}`);
}

function checkSpec(spec, where) {
  const out = zod(core.durationValidationSchema, spec.duration, `${where}.duration`);
  if (spec.refreshInterval !== undefined) out.push(...zod(core.durationValidationSchema, spec.refreshInterval, `${where}.refreshInterval`));
  const panels = spec.panels ?? {};
  for (const [key, panel] of Object.entries(panels)) out.push(...zod(core.panelDefinitionSchema, panel, `${where}.panels.${key}`));
  const variables = spec.variables ?? [];
  variables.forEach((v, i) => {
    out.push(...zod(core.variableDefinitionSchema, v, `${where}.variables[${i}]`));
    if (!/^\w+$/.test(v.spec?.name ?? '')) out.push(`${where}.variables[${i}].spec.name: ${JSON.stringify(v.spec?.name)} cannot be interpolated as $name`);
  });
  for (const [key, ds] of Object.entries(spec.datasources ?? {})) out.push(...zod(core.datasourceSpecSchema, ds, `${where}.datasources.${key}`));
  out.push(...checkLayouts(spec, where), ...checkVariableUse(spec, where));
  return out;
}

function checkLayouts(spec, where) {
  const out = [];
  const laidOut = new Set();
  (spec.layouts ?? []).forEach((layout, i) => (layout.spec?.items ?? []).forEach((item, j) => {
    const at = `${where}.layouts[${i}].items[${j}]`;
    const ref = item.content?.$ref ?? '';
    const key = ref.startsWith('#/spec/panels/') ? ref.slice('#/spec/panels/'.length) : undefined;
    if (key === undefined || !(key in (spec.panels ?? {}))) out.push(`${at}: $ref ${JSON.stringify(ref)} names no panel`);
    else laidOut.add(key);
    if (!['x', 'y', 'width', 'height'].every((f) => Number.isInteger(item[f]) && item[f] >= 0)) out.push(`${at}: x, y, width and height must be whole numbers`);
    else if (item.x + item.width > GRID || item.width === 0 || item.height === 0) out.push(`${at}: does not fit the ${GRID}-column grid`);
  }));
  for (const key of Object.keys(spec.panels ?? {})) if (!laidOut.has(key)) out.push(`${where}.panels.${key}: in no layout, never drawn`);
  return out;
}

function checkVariableUse(spec, where) {
  const defined = new Set((spec.variables ?? []).map((v) => v.spec?.name));
  const texts = [];
  for (const [key, panel] of Object.entries(spec.panels ?? {})) {
    (panel.spec?.queries ?? []).forEach((q, i) => texts.push([`${where}.panels.${key}.spec.queries[${i}]`, q.spec?.plugin?.spec?.query ?? '']));
  }
  (spec.variables ?? []).forEach((v, i) => {
    const s = v.spec?.plugin?.spec ?? {};
    for (const text of [...(s.matchers ?? []), s.expr ?? '']) texts.push([`${where}.variables[${i}]`, text]);
  });
  const out = [];
  for (const [at, text] of texts) {
    for (const m of text.matchAll(/\$(?:\{(\w+)(?::\w+)?\}|(\w+))/g)) {
      const name = m[1] ?? m[2];
      if (!defined.has(name) && !BUILTINS.has(name)) out.push(`${at}: $${name} is no variable of the dashboard`);
    }
  }
  return out;
}

function checkEnvelope(doc) {
  switch (doc.kind) {
    case 'Dashboard':
      return [...zod(core.projectMetadataSchema, doc.metadata, 'metadata'), ...checkSpec(doc.spec ?? {}, 'spec')];
    case 'PersesDashboard':
      return [...zod(core.nameSchema, doc.metadata?.name, 'metadata.name'), ...zod(core.nameSchema, doc.metadata?.namespace, 'metadata.namespace'),
        ...checkSpec(doc.spec?.config ?? {}, 'spec.config')];
    case 'PersesDatasource':
      return [...zod(core.nameSchema, doc.metadata?.name, 'metadata.name'), ...zod(core.datasourceSpecSchema, doc.spec?.config, 'spec.config')];
    default:
      return [`kind ${JSON.stringify(doc.kind)} is none of Dashboard, PersesDashboard, PersesDatasource`];
  }
}

// Every input as an object literal that must satisfy its type in types.ts; tsc's complaints, per input.
function checkTypes(docs) {
  const dir = mkdtempSync(join(tmpdir(), 'perses-check-'));
  try {
    const files = docs.map(([, doc], i) => {
      const file = join(dir, `input${i}.ts`);
      writeFileSync(file, `import type { ${doc.kind} } from ${JSON.stringify(join(here, 'types'))};\n\n`
        + `export default ${JSON.stringify(doc, null, 2)} satisfies ${doc.kind};\n`);
      return file;
    });
    writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({
      compilerOptions: { strict: true, noEmit: true, skipLibCheck: true, target: 'ES2022', lib: ['ES2022', 'DOM'],
        module: 'ESNext', moduleResolution: 'bundler', types: [] },
      files,
    }));
    const tsc = spawnSync(process.execPath, [join(here, 'node_modules/typescript/bin/tsc'), '-p', dir, '--pretty', 'false'], { encoding: 'utf8' });
    if (tsc.status === 0) return docs.map(() => []);
    const out = docs.map(() => []);
    let last;
    for (const line of tsc.stdout.split('\n')) {
      const m = line.match(/^(.*)\((\d+),\d+\): error (TS\d+): (.*)$/);
      if (m) {
        const i = files.indexOf(resolve(m[1]));
        const source = i < 0 ? '' : readFileSync(files[i], 'utf8').split('\n')[Number(m[2]) - 1].trim();
        last = i < 0 ? undefined : out[i];
        if (i < 0) console.error(`tsc: ${line}`);       // an error outside the inputs: types.ts or a package's types
        else last.push(`line ${m[2]} (${source.slice(0, 80)}): ${m[4]}`);
      } else if (line.trim() && last) {
        last[last.length - 1] += ` ${line.trim()}`;
      }
    }
    if (out.every((o) => o.length === 0)) throw new Error(`tsc failed outside the inputs:\n${tsc.stdout}${tsc.stderr}`);
    return out;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const docs = process.argv.slice(2).map((file) => [file, JSON.parse(readFileSync(file, 'utf8'))]);
if (docs.length === 0) {
  console.error('usage: node check.mjs FILE.json...');
  process.exit(2);
}
const typed = checkTypes(docs);
let problems = 0;
docs.forEach(([file, doc], i) => {
  for (const p of [...checkEnvelope(doc), ...typed[i]]) {
    console.log(`${file}: ${p}`);
    problems += 1;
  }
});
console.log(problems ? `${problems} problems in ${docs.length} files` : `${docs.length} files checked: no problems`);
process.exit(problems ? 1 : 0);
