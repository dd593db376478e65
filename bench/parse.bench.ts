/**
 * How long parsing a large Dockerfile takes: a generated 5,000-line file with every kind of line
 * the parser treats differently (continuations, comments inside them, heredocs, JSON and shell
 * forms, key=value pairs, ONBUILD). `dockerfile-ast` parses the same text as the peer.
 *
 * `npx tsx bench/parse.ts` prints the numbers; `benchParse()` returns them.
 */
import { fileURLToPath } from 'node:url';
import ast from 'dockerfile-ast';
import { dumpDockerfile, parseDockerfile } from '../src/frontend/parser.ts';
import type { BenchRow } from './types.ts';

const TARGET_LINES = 5000;

/** One stage's worth of instructions; repeated until the file has TARGET_LINES lines. */
function stage(n: number): string[] {
  return [
    `# stage ${n}: build`,
    `FROM --platform=$BUILDPLATFORM golang:1.22 AS build${n}`,
    `ARG VERSION=${n} COMMIT`,
    `ENV GOPATH=/go CGO_ENABLED=0 NAME="stage ${n}"`,
    `LABEL org.opencontainers.image.title="s${n}" org.opencontainers.image.version=$VERSION`,
    'LABEL maintainer someone@example.com',
    'WORKDIR /src',
    'COPY --chown=1000:1000 go.mod go.sum ./',
    'RUN --mount=type=cache,target=/go/pkg/mod \\',
    '    go mod download \\',
    '    # a comment inside the continuation',
    '    && go build -trimpath -ldflags "-s -w" \\',
    '       -o /out/app ./cmd/app',
    'RUN <<EOF',
    'set -eu',
    `echo "building ${n}" > /out/info`,
    'EOF',
    'COPY <<-CONF /etc/app.conf',
    '\tkey = value',
    `\tstage = ${n}`,
    '\tCONF',
    '',
    `FROM alpine:3.20 AS final${n}`,
    `COPY --from=build${n} /out/app /usr/local/bin/app`,
    'EXPOSE 8080/tcp 9090',
    'HEALTHCHECK --interval=30s CMD ["app", "health"]',
    'ONBUILD RUN echo triggered',
    'USER 65532:65532',
    'ENTRYPOINT ["/usr/local/bin/app"]',
    'CMD --verbose',
    '',
  ];
}

export function generateDockerfile(lines = TARGET_LINES): string {
  const out = ['# syntax=docker/dockerfile:1', '# check=error=true', ''];
  for (let n = 0; out.length < lines; n++) out.push(...stage(n));
  return `${out.slice(0, lines).join('\n')}\n`;
}

/** Median milliseconds of `runs` calls after `warmup` untimed ones. */
function time(fn: () => unknown, runs = 15, warmup = 3): number {
  for (let i = 0; i < warmup; i++) fn();
  const samples: number[] = [];
  for (let i = 0; i < runs; i++) {
    const start = process.hrtime.bigint();
    fn();
    samples.push(Number(process.hrtime.bigint() - start) / 1e6);
  }
  samples.sort((a, b) => a - b);
  return samples[Math.floor(samples.length / 2)]!;
}

export async function benchParse(): Promise<{ name: string; ms: number }[]> {
  const text = generateDockerfile();
  const parsed = parseDockerfile(text, 'Dockerfile');
  return [
    { name: `parse ${TARGET_LINES}-line Dockerfile (${parsed.nodes.length} instructions)`, ms: time(() => parseDockerfile(text, 'Dockerfile')) },
    { name: 'parse + BuildKit dump', ms: time(() => dumpDockerfile(parseDockerfile(text, 'Dockerfile'))) },
    { name: 'dockerfile-ast 0.7.1 (peer)', ms: time(() => ast.DockerfileParser.parse(text).getInstructions()) },
  ];
}

/** In the `npm run bench` row format, should the runner pick this file up. */
export default async function bench(): Promise<BenchRow[]> {
  const [ours, , peer] = await benchParse();
  return [{ name: 'parse 5,000-line Dockerfile', ours: ours!.ms, unit: 'ms', peer: { name: 'dockerfile-ast', value: peer!.ms } }];
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  void benchParse().then((rows) => {
    for (const row of rows) console.log(`${row.name}: ${row.ms.toFixed(2)} ms`);
  });
}
