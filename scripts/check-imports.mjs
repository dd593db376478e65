#!/usr/bin/env node
/**
 * `npm run lint` half two: imports between src/ folders follow ../shared/DESIGN.md. Each folder
 * may import only the folders listed for it (its "knows nothing of" column, made exact), the CLI
 * imports nothing but src/index.ts, and there are no cycles between folders.
 */
import fs from 'node:fs';
import path from 'node:path';

const SRC = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', 'src');

// folder → folders it may import ('.' is src/errors.ts, src/version.ts).
const ALLOWED = {
  '.': [],
  image: ['.'],
  graph: ['.'],
  frontend: ['.', 'graph', 'image'],
  context: ['.', 'image'],
  store: ['.', 'image'],
  layer: ['.', 'image', 'store'],
  attest: ['.', 'image', 'layer', 'store'],
  registry: ['.', 'image', 'store'],
  run: ['.', 'image', 'layer', 'store', 'context'],
  output: ['.', 'image', 'store', 'layer', 'registry'],
  engine: ['.', 'frontend', 'graph', 'context', 'layer', 'image', 'store', 'run', 'registry'],
  api: ['.', 'frontend', 'graph', 'context', 'layer', 'image', 'store', 'registry', 'run', 'engine', 'output', 'attest'],
  index: ['.', 'api', 'engine', 'image', 'registry', 'store', 'output', 'frontend', 'graph', 'context', 'layer', 'run'],
  cli: ['index'],
};

function folderOf(file) {
  const rel = path.relative(SRC, file);
  if (rel === 'index.ts') return 'index';
  const first = rel.split(path.sep)[0];
  return rel.includes(path.sep) ? first : '.';
}

function* files(dir) {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) yield* files(p);
    else if (p.endsWith('.ts')) yield p;
  }
}

const problems = [];
const edges = new Map();
for (const file of files(SRC)) {
  const from = folderOf(file);
  const text = fs.readFileSync(file, 'utf8');
  for (const m of text.matchAll(/(?:import|export)\s[^'"]*?from\s+['"](\.[^'"]+)['"]|import\(\s*['"](\.[^'"]+)['"]\s*\)/g)) {
    const spec = m[1] ?? m[2];
    const target = path.resolve(path.dirname(file), spec);
    const to = folderOf(target);
    if (to === from) continue;
    if (!(from in ALLOWED)) {
      problems.push(`${path.relative(SRC, file)}: folder "${from}" is not in the design's table`);
      continue;
    }
    if (!ALLOWED[from].includes(to)) {
      problems.push(`${path.relative(SRC, file)} imports ${spec}: ${from}/ may not depend on ${to === '.' ? 'src/' : `${to}/`}`);
    }
    if (!edges.has(from)) edges.set(from, new Set());
    edges.get(from).add(to);
  }
}

// Cycles between folders (the allowed table is acyclic, but check what the code does).
const state = new Map();
function visit(n, trail) {
  if (state.get(n) === 'done') return;
  if (state.get(n) === 'active') {
    problems.push(`import cycle between folders: ${[...trail.slice(trail.indexOf(n)), n].join(' → ')}`);
    return;
  }
  state.set(n, 'active');
  for (const m of edges.get(n) ?? []) visit(m, [...trail, n]);
  state.set(n, 'done');
}
for (const n of edges.keys()) visit(n, []);

if (problems.length > 0) {
  console.error(problems.join('\n'));
  process.exit(1);
}
console.log(`imports follow the design (${edges.size} folders checked)`);
