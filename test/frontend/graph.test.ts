/**
 * The build graph: stage order, --target pruning, parallel waves, stage references by name and
 * index, cycles, ONBUILD triggers. Rules are from the Dockerfile reference
 * (https://docs.docker.com/reference/dockerfile/) and BuildKit's dockerfile2llb where it is silent.
 */
import test from 'ava';
import { ERROR_CODES, LadingError } from '../../src/errors.ts';
import { loadDockerfile } from '../../src/frontend/index.ts';
import { BUILD_PLATFORM, TARGET_PLATFORM, copySteps, envMap, runDockerfile, runSteps } from './semantics-run.ts';

const load = (text: string, target?: string, buildArgs: Record<string, string> = {}) =>
  loadDockerfile(text, {
    file: 'Dockerfile',
    buildArgs: new Map(Object.entries(buildArgs)),
    ...(target !== undefined ? { target } : {}),
    buildPlatform: BUILD_PLATFORM,
    targetPlatform: TARGET_PLATFORM,
  });

const MULTI = `FROM golang AS build
RUN go build -o /app
FROM node AS assets
RUN npm run build
FROM build AS test
RUN go test ./...
FROM alpine AS final
COPY --from=build /app /app
COPY --from=assets /dist /www
`;

test('the default target is the last stage; order puts dependencies first', (t) => {
  const { graph } = load(MULTI);
  t.is(graph.target, 3);
  t.deepEqual(graph.order, [0, 1, 3]);
  t.deepEqual(graph.stages[3]!.dependsOn, [0, 1]);
});

test('--target builds only what the target needs (ref §FROM: stages are targets; BuildKit resolves reachable stages)', (t) => {
  const { graph } = load(MULTI, 'test');
  t.is(graph.target, 2);
  t.deepEqual(graph.order, [0, 2], 'assets and final are not built');
  t.deepEqual(graph.waves, [[0], [2]]);
});

test('independent stages share a wave so the engine can run them together', (t) => {
  const { graph } = load(MULTI);
  t.deepEqual(graph.waves, [[0, 1], [3]]);
});

test('a diamond: the shared base first, its two users together, then the stage that reads both', (t) => {
  const { graph } = load(`FROM alpine AS base
FROM base AS left
FROM base AS right
FROM scratch
COPY --from=left / /l
COPY --from=right / /r
`);
  t.deepEqual(graph.order, [0, 1, 2, 3]);
  t.deepEqual(graph.waves, [[0], [1, 2], [3]]);
  t.deepEqual(graph.stages[1]!.base, { kind: 'stage', index: 0 });
  t.deepEqual(graph.stages[3]!.base, { kind: 'scratch' });
});

test('instructions of stages the target does not need are never expanded', (t) => {
  // ${REQ:?} would fail if the unused stage were dispatched (BuildKit only dispatches reachable stages).
  const text = `FROM alpine AS unused
COPY \${REQ:?REQ_must_be_set} /x
RUN --mount=type=cache,target=\${REQ:?} true
FROM alpine AS wanted
RUN echo ok
`;
  const run = runDockerfile(text, { target: 'wanted' });
  t.deepEqual(run.frontend.graph.order, [1]);
  t.deepEqual(runSteps(run.target).map((s) => s.argv), [['/bin/sh', '-c', 'echo ok']]);
  t.throws(() => runDockerfile(text, { target: 'unused' }), { message: /REQ_must_be_set/ });
});

test('stages are referenced by name or index, and names are case-insensitive', (t) => {
  const { graph } = load(`FROM alpine AS Build
FROM alpine AS tools
FROM scratch
COPY --from=BUILD /a /a
COPY --from=1 /b /b
RUN --mount=type=bind,from=Tools,target=/t true
`);
  t.is(graph.stages[0]!.stage.name, 'build', 'AS names are lowercased');
  t.deepEqual(graph.stages[2]!.dependsOn, [0, 1]);
  t.deepEqual(graph.stages[2]!.imageInputs, []);
  t.is(load('FROM alpine AS Build\nFROM scratch\n', 'BUILD').graph.target, 0, '--target ignores case');
});

test('a --from that names no stage is an image; a cache mount without from reads nothing', (t) => {
  const { graph } = load(`FROM alpine
COPY --from=nginx:latest /etc/nginx/nginx.conf /nginx.conf
RUN --mount=type=bind,from=docker.io/library/busybox,target=/bb --mount=type=cache,target=/c --mount=type=tmpfs,target=/t true
`);
  t.deepEqual(graph.stages[0]!.imageInputs, ['nginx:latest', 'docker.io/library/busybox']);
  t.deepEqual(graph.stages[0]!.dependsOn, []);
});

test('FROM names a stage only when an earlier stage has that name (BuildKit resolves FROM in file order)', (t) => {
  const { graph } = load(`FROM node AS early
FROM node AS node
FROM node
`);
  t.deepEqual(graph.stages[0]!.base, { kind: 'image', ref: 'node' });
  t.deepEqual(graph.stages[1]!.base, { kind: 'image', ref: 'node' }, 'a stage is not its own base');
  t.deepEqual(graph.stages[2]!.base, { kind: 'stage', index: 1 });
  t.true(graph.warnings.some((w) => /FROM node names an image, not the stage "node" defined later/.test(w.message)));
});

test('a duplicate stage name is a warning; later references see the later stage', (t) => {
  const { graph } = load(`FROM alpine AS x
FROM x AS y
FROM busybox AS x
FROM scratch
COPY --from=x / /
`);
  t.deepEqual(graph.stages[1]!.base, { kind: 'stage', index: 0 });
  t.deepEqual(graph.stages[3]!.dependsOn, [2]);
  t.true(graph.warnings.some((w) => /duplicate stage name "x"/.test(w.message) && w.location?.line === 3));
});

test('scratch is no image; FROM --platform is expanded with global ARGs', (t) => {
  const { graph } = load(`ARG ARCH=arm64
FROM --platform=linux/$ARCH scratch AS a
FROM --platform=$BUILDPLATFORM alpine
`);
  t.deepEqual(graph.stages[0]!.base, { kind: 'scratch' });
  t.is(graph.stages[0]!.platform, 'linux/arm64');
  t.is(graph.stages[1]!.platform, 'linux/amd64');
});

test('globalArgs holds the ARGs before the first FROM after build args', (t) => {
  const { graph } = load('ARG A=1\nARG B\nARG C=$A-x\nFROM alpine\n', undefined, { A: '9' });
  t.deepEqual([...graph.globalArgs], [['A', '9'], ['B', undefined], ['C', '9-x']]);
});

test('a stage based on another starts from its ARGs and environment (ref §ARG Scope, §ENV)', (t) => {
  const run = runDockerfile(`FROM alpine AS base
ARG VERSION=1
ENV HOME_DIR=/srv
FROM base AS child
ARG EXTRA=x
RUN echo
`);
  const env = envMap(runSteps(run.target)[0]!.env);
  t.is(env.get('VERSION'), '1');
  t.is(env.get('HOME_DIR'), '/srv');
  t.is(runSteps(run.target)[0]!.history, 'RUN |2 VERSION=1 EXTRA=x /bin/sh -c echo');
  t.is(envMap(run.target.config.Env).get('VERSION'), undefined, 'ARGs stay out of the image config');
});

test('an image base starts with none of the Dockerfile\'s ARGs', (t) => {
  const run = runDockerfile(`FROM alpine AS one
ARG X=1
FROM alpine
RUN true
`);
  t.false(envMap(runSteps(run.target)[0]!.env).has('X'));
});

test('TARGET* ARGs describe the build target even when the engine passes the stage platform', (t) => {
  const fe = load('FROM --platform=$BUILDPLATFORM golang\nARG TARGETARCH BUILDARCH\nRUN true\n');
  const d = fe.dispatcher(0, undefined, BUILD_PLATFORM);
  for (const cmd of fe.graph.stages[0]!.stage.commands) d.dispatch(cmd);
  const step = d.dispatch(fe.graph.stages[0]!.stage.commands[1]!);
  t.is(step?.kind, 'run');
  const env = envMap(step?.kind === 'run' ? step.env : []);
  t.is(env.get('TARGETARCH'), 'arm64');
  t.is(env.get('BUILDARCH'), 'amd64');
});

test('ONBUILD triggers: parsed in order, located at the FROM line, heredocs kept', (t) => {
  const fe = load('FROM base\n');
  const from = fe.graph.stages[0]!.stage.from.location;
  const cmds = fe.triggers(['ADD . /app/src', 'RUN <<EOF\necho hi\nEOF', 'COPY --from=build /x /y'], from);
  t.deepEqual(cmds.map((c) => c.kind), ['add', 'run', 'copy']);
  t.true(cmds.every((c) => c.location.line === 1 && c.location.file === 'Dockerfile'));
  t.is(cmds[0]!.location.text, 'ONBUILD ADD . /app/src');
  const run = cmds[1]!;
  t.true(run.kind === 'run' && run.heredocs[0]?.content === 'echo hi\n');
  t.true(cmds[2]!.kind === 'copy' && cmds[2]!.from === 'build');
  t.deepEqual(fe.triggers(null, from), []);
  t.deepEqual(fe.triggers([], from), []);
});

test('ONBUILD triggers that cannot run are errors naming the FROM line', (t) => {
  const fe = load('FROM base\n');
  const from = fe.graph.stages[0]!.stage.from.location;
  const bad = t.throws(() => fe.triggers(['RUNN x'], from), { instanceOf: LadingError });
  t.regex(bad.message, /unknown instruction: RUNN/);
  const fromTrigger = t.throws(() => fe.triggers(['FROM alpine'], from), { instanceOf: LadingError });
  t.regex(fromTrigger.message, /ONBUILD FROM/);
  t.is(fromTrigger.location?.line, 1);
});

test('ONBUILD triggers of a base image run before the stage\'s own instructions', (t) => {
  const run = runDockerfile('FROM base\nCOPY b /b\n', { images: { base: { Env: ['PATH=/bin'], OnBuild: ['COPY a /a'] } } });
  t.deepEqual(copySteps(run.target).map((s) => s.history), ['COPY a /a', 'COPY b /b']);
  t.is(run.target.config.OnBuild, undefined, 'triggers are not inherited by grand-children (ref §ONBUILD)');
});

test('a cycle between stages is an error naming them', (t) => {
  const err = t.throws(
    () =>
      load(`FROM alpine AS x
COPY --from=y /a /b
FROM alpine AS y
COPY --from=x /a /b
`),
    { instanceOf: LadingError },
  );
  t.is(err.code, ERROR_CODES.DOCKERFILE_INVALID);
  t.regex(err.message, /circular dependency detected on stage: x \(x → y → x\)/);
  t.deepEqual(err.location, { file: 'Dockerfile', line: 1, column: 1, text: 'FROM alpine AS x' });
  t.regex(err.hint ?? '', /break the cycle/);
});

test('a stage that copies from itself is a cycle', (t) => {
  const err = t.throws(() => load('FROM alpine AS me\nCOPY --from=me /a /b\n'), { instanceOf: LadingError });
  t.regex(err.message, /circular dependency detected on stage: me/);
});

test('a cycle is reported even in stages the target does not need (BuildKit checks every stage)', (t) => {
  const err = t.throws(() => load('FROM alpine AS a\nCOPY --from=a / /\nFROM alpine AS b\n', 'b'), { instanceOf: LadingError });
  t.regex(err.message, /circular dependency/);
});
