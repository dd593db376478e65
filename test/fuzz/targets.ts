/**
 * Fuzz targets shared by the test suite (a few thousand inputs each) and `npm run fuzz`
 * (100,000 each): the Dockerfile front end, the .dockerignore matcher, the reference parser and
 * the tar reader. The property is the same for all: the code returns, or throws LadingError;
 * anything else (TypeError, RangeError, a hang, a plain Error) is a bug.
 */
import { Readable } from 'node:stream';
import fc from 'fast-check';
import { LadingError } from '../../src/errors.ts';
import { loadDockerfile } from '../../src/frontend/index.ts';
import { IgnoreMatcher, parseDockerignore } from '../../src/context/dockerignore.ts';
import { parseReference } from '../../src/registry/reference.ts';
import { readTar } from '../../src/layer/tar-reader.ts';
import { tarHeader } from '../security/helpers/hostile-tar.ts';

const PLATFORM = { os: 'linux', architecture: 'amd64' };

/** Rethrow anything that is not our own error class. */
function onlyLadingErrors(err: unknown): void {
  if (!(err instanceof LadingError)) throw err;
}

// ---- Dockerfiles ----------------------------------------------------------------------------

const KEYWORDS = ['FROM', 'RUN', 'CMD', 'LABEL', 'MAINTAINER', 'EXPOSE', 'ENV', 'ADD', 'COPY', 'ENTRYPOINT', 'VOLUME', 'USER', 'WORKDIR', 'ARG', 'ONBUILD', 'STOPSIGNAL', 'HEALTHCHECK', 'SHELL', 'from', 'copy', 'FROM scratch', 'FROM busybox AS a', 'FROM a', 'COPY --from=a', 'COPY --chown=1:2 --chmod=755', 'ADD --checksum=sha256:', 'RUN --mount=type=secret,id=x', 'RUN --mount=type=cache,target=/c', 'HEALTHCHECK CMD', 'ONBUILD ONBUILD'];
const PIECES = [' ', '  ', '\t', '\n', '\r\n', '\\\n', '\\', '`', '"', "'", '$', '${', '}', '${A:-b}', '${A:+b}', '${A?err}', '$$', '#', '# escape=`\n', '# syntax=docker/dockerfile:1\n', '# check=skip=all\n', '<<EOF', '<<-EOF', '<<"EOF"', 'EOF', '\nEOF\n', '[', ']', '["a","b"]', '["a",', ',', '=', '--', '--platform=$BUILDPLATFORM', '--target', 'AS', 'a', 'b', '/', '.', '..', '*', '?', '[a-', '\0', '\u00e9', '\ud83d\ude00', '\ufeff', '0', '65536', '-1', 'k=v', 'k="v w"', ':', '@sha256:'];

const dockerfileText = fc.oneof(
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 300 }) },
  {
    weight: 4,
    arbitrary: fc
      .array(fc.tuple(fc.constantFrom(...KEYWORDS), fc.array(fc.oneof(fc.constantFrom(...PIECES), fc.string({ maxLength: 8 })), { maxLength: 12 })), { maxLength: 12 })
      .map((lines) => lines.map(([k, rest]) => `${k} ${rest.join('')}`).join('\n')),
  },
);

const buildArgs = fc.dictionary(fc.constantFrom('A', 'B', 'TARGETARCH', 'HTTP_PROXY', 'x'), fc.string({ maxLength: 10 }), { maxKeys: 3 });

export const frontend = fc.property(dockerfileText, buildArgs, fc.option(fc.constantFrom('a', 'b', '0', 'nope'), { nil: undefined }), (text, args, target) => {
  try {
    const fe = loadDockerfile(text, { file: 'Dockerfile', buildArgs: new Map(Object.entries(args)), target, buildPlatform: PLATFORM, targetPlatform: PLATFORM });
    // Dispatch every command of every stage in order, as the engine does (expansion, flags, typing).
    for (const index of fe.graph.order) {
      const node = fe.graph.stages[index]!;
      const d = fe.dispatcher(index, { Env: ['PATH=/bin'], OnBuild: ['RUN x'] });
      for (const cmd of node.stage.commands) d.dispatch(cmd);
    }
  } catch (err) {
    onlyLadingErrors(err);
  }
});

// ---- .dockerignore ---------------------------------------------------------------------------

const IGNORE_PIECES = ['*', '**', '?', '!', '/', '\\', '[', ']', '[!a]', '[^a-z]', '[a-', '[\\]]', '{', '}', '.', '..', '../', '#', ' ', '\t', '\r', '\n', 'a', 'b', 'node_modules', '.git', '\ufeff', '\0', '\u00e9'];
const ignoreText = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 200 }),
  fc.array(fc.array(fc.constantFrom(...IGNORE_PIECES), { maxLength: 8 }).map((p) => p.join('')), { maxLength: 10 }).map((l) => l.join('\n')),
);
const relPath = fc.array(fc.oneof(fc.constantFrom('a', 'b', '.git', 'node_modules', 'x.txt', '..', '.', '', '*', '[', '\u00e9'), fc.string({ maxLength: 6 })), { minLength: 1, maxLength: 5 }).map((p) => p.join('/'));

export const dockerignore = fc.property(ignoreText, fc.array(relPath, { maxLength: 8 }), (text, paths) => {
  try {
    const m = new IgnoreMatcher(parseDockerignore(text, '.dockerignore'));
    for (const p of paths) {
      m.excludes(p);
      m.canSkipDir(p);
    }
  } catch (err) {
    onlyLadingErrors(err);
  }
});

// ---- references ------------------------------------------------------------------------------

const REF_PIECES = ['docker.io', 'localhost', 'localhost:5000', '127.0.0.1:5000', '[::1]:5000', 'library', 'busybox', 'a', 'A', '/', '//', ':', '::', '@', 'sha256:', `sha256:${'a'.repeat(64)}`, `sha512:${'b'.repeat(128)}`, 'latest', '-', '_', '__', '.', '..', 'x'.repeat(130), 'y'.repeat(300)];
const referenceText = fc.oneof(fc.string({ unit: 'binary', maxLength: 120 }), fc.array(fc.constantFrom(...REF_PIECES), { maxLength: 8 }).map((p) => p.join('')));

export const reference = fc.property(referenceText, (s) => {
  try {
    const r = parseReference(s);
    r.toString();
    parseReference(r.toString());
  } catch (err) {
    onlyLadingErrors(err);
  }
});

// ---- tar reader --------------------------------------------------------------------------------

const TYPES = ['file', 'hardlink', 'symlink', 'char', 'block', 'directory', 'fifo'] as const;
const tarName = fc.oneof(fc.constantFrom('a', 'a/b', '/abs', '../up', 'a/../../b', './x', '', '.', '..', 'x'.repeat(99), '.wh..wh..opq', '.wh.a', 'a\0b'), fc.string({ maxLength: 20 }));
const tarEntry = fc.record({
  name: tarName,
  type: fc.constantFrom(...TYPES),
  data: fc.uint8Array({ maxLength: 700 }).map((a) => Buffer.from(a)),
  size: fc.option(fc.oneof(fc.nat(2000), fc.constantFrom(0, 511, 512, 8 ** 11, 2 ** 40)), { nil: undefined }),
  linkname: fc.option(tarName, { nil: undefined }),
});

/** A tar archive built from entries, then possibly damaged: bytes flipped, cut, or junk appended. */
const tarBytes = fc
  .tuple(
    fc.array(tarEntry, { maxLength: 5 }),
    fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }),
    fc.option(fc.nat(), { nil: undefined }),
    fc.uint8Array({ maxLength: 600 }),
  )
  .map(([entries, flips, cut, junk]) => {
    const parts: Buffer[] = [];
    for (const e of entries) {
      let header: Buffer;
      try {
        header = tarHeader({ name: e.name, type: e.type, linkname: e.linkname }, e.size ?? e.data.length);
      } catch {
        continue; // a name too long for the helper
      }
      parts.push(header, e.data, Buffer.alloc((512 - (e.data.length % 512)) % 512));
    }
    parts.push(Buffer.alloc(1024), Buffer.from(junk));
    const buf = Buffer.concat(parts);
    for (const [at, value] of flips) if (buf.length > 0) buf[at % buf.length] = value;
    return cut === undefined || buf.length === 0 ? buf : buf.subarray(0, cut % buf.length);
  });

export const tarReader = fc.asyncProperty(fc.oneof({ weight: 4, arbitrary: tarBytes }, { weight: 1, arbitrary: fc.uint8Array({ maxLength: 2048 }).map((a) => Buffer.from(a)) }), fc.boolean(), async (bytes, readBodies) => {
  try {
    await readTar(Readable.from([bytes]), async (_entry, body) => {
      if (readBodies) for await (const _ of body) void _;
    });
  } catch (err) {
    onlyLadingErrors(err);
  }
});

export const TARGETS = { frontend, dockerignore, reference, tarReader } as const;
export type TargetName = keyof typeof TARGETS;
