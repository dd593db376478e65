/**
 * What the dispatcher hands the engine beyond the table's cases: RUN mounts with BuildKit's
 * defaults, cache keys (what changes them and what must not), and history lines in BuildKit's form.
 */
import test from 'ava';
import type { RunMountStep, Step } from '../../src/frontend/dispatch.ts';
import { LadingError } from '../../src/errors.ts';
import { copySteps, runDockerfile, runSteps } from './semantics-run.ts';

const lastRun = (text: string, buildArgs: Record<string, string> = {}) => runSteps(runDockerfile(text, { buildArgs }).target).at(-1)!;
const mounts = (flags: string, workdir = '/'): RunMountStep[] => lastRun(`FROM alpine AS build\nFROM alpine\nWORKDIR ${workdir}\nRUN ${flags} true\n`).mounts;

test('RUN --mount=type=bind: read-only by default, from a stage, rw on request (ref §RUN --mount=type=bind)', (t) => {
  t.deepEqual(mounts('--mount=target=/src'), [{ type: 'bind', target: '/src', readonly: true, required: false }]);
  t.deepEqual(mounts('--mount=type=bind,from=build,source=/out,target=/in,rw'), [
    { type: 'bind', target: '/in', source: '/out', from: 'build', readonly: false, required: false },
  ]);
  t.deepEqual(mounts('--mount=type=bind,target=/in,readwrite=true')[0]!.readonly, false);
  t.deepEqual(mounts('--mount=type=bind,target=/in,ro=false')[0]!.readonly, false);
});

test('RUN --mount=type=cache: writable, shared, id defaults to the target (ref §RUN --mount=type=cache)', (t) => {
  t.deepEqual(mounts('--mount=type=cache,target=/root/.cache/go-build'), [
    { type: 'cache', target: '/root/.cache/go-build', id: '/root/.cache/go-build', sharing: 'shared', readonly: false, required: false },
  ]);
  t.deepEqual(mounts('--mount=type=cache,target=/var/cache/apt,sharing=locked,id=apt,mode=0700,uid=100,gid=101,ro'), [
    { type: 'cache', target: '/var/cache/apt', id: 'apt', sharing: 'locked', mode: 0o700, uid: 100, gid: 101, readonly: true, required: false },
  ]);
});

test('a relative mount target is below WORKDIR (BuildKit joins it with the working directory)', (t) => {
  const [m] = mounts('--mount=type=cache,target=.cache', '/app');
  t.is(m!.target, '/app/.cache');
  t.is(m!.id, '.cache', 'the cache id is the target as written');
});

test('RUN --mount=type=secret: id from the target, target from the id, env-only secrets (ref §RUN --mount=type=secret)', (t) => {
  t.deepEqual(mounts('--mount=type=secret,id=aws,target=/root/.aws/credentials'), [
    { type: 'secret', target: '/root/.aws/credentials', id: 'aws', readonly: true, required: false },
  ]);
  t.deepEqual(mounts('--mount=type=secret,id=npmrc'), [{ type: 'secret', target: '/run/secrets/npmrc', id: 'npmrc', readonly: true, required: false }]);
  t.deepEqual(mounts('--mount=type=secret,target=/etc/token')[0]!.id, 'token');
  t.deepEqual(mounts('--mount=type=secret,id=API_KEY,env=API_KEY,required'), [{ type: 'secret', id: 'API_KEY', env: 'API_KEY', readonly: true, required: true }]);
});

test('RUN --mount=type=ssh and tmpfs defaults (ref §RUN --mount=type=ssh, §RUN --mount=type=tmpfs)', (t) => {
  t.deepEqual(mounts('--mount=type=ssh --mount=type=ssh,id=gitlab'), [
    { type: 'ssh', id: 'default', target: '/run/buildkit/ssh_agent.0', readonly: true, required: false },
    { type: 'ssh', id: 'gitlab', target: '/run/buildkit/ssh_agent.1', readonly: true, required: false },
  ]);
  t.deepEqual(mounts('--mount=type=tmpfs,target=/tmp,size=64m'), [{ type: 'tmpfs', target: '/tmp', size: '64m', readonly: false, required: false }]);
});

test('mount values expand variables', (t) => {
  const [m] = lastRun('FROM alpine\nARG CACHE=/root/.npm\nRUN --mount=type=cache,target=$CACHE,id=npm-$CACHE true\n').mounts;
  t.is(m!.target, '/root/.npm');
  t.is(m!.id, 'npm-/root/.npm');
});

test('flag quotes are gone before the mount CSV is read, so a comma always splits (as in BuildKit)', (t) => {
  t.throws(() => lastRun('FROM alpine\nRUN --mount=type=bind,"source=a,b",target=/x true\n'), { message: /invalid field 'b' must be a key=value pair/ });
});

test('a mount on / is refused', (t) => {
  t.throws(() => mounts('--mount=type=tmpfs,target=/'), { instanceOf: LadingError, message: /invalid mount target/ });
});

test('RUN --network and --security are passed on', (t) => {
  const step = lastRun('FROM alpine\nRUN --network=none --security=insecure true\n');
  t.is(step.network, 'none');
  t.true(step.insecure);
  t.is(lastRun('FROM alpine\nRUN true\n').network, 'default');
});

test('a proxy build arg does not change the RUN key; a declared one does (ref §Predefined ARGs)', (t) => {
  const text = 'FROM ubuntu\nRUN apt-get update\n';
  t.is(lastRun(text, { HTTP_PROXY: 'http://a' }).key, lastRun(text).key);
  t.is(lastRun(text, { HTTP_PROXY: 'http://a' }).key, lastRun(text, { HTTP_PROXY: 'http://b' }).key);
  const declared = 'FROM ubuntu\nARG HTTP_PROXY\nRUN apt-get update\n';
  t.not(lastRun(declared, { HTTP_PROXY: 'http://a' }).key, lastRun(declared, { HTTP_PROXY: 'http://b' }).key);
});

test('an ARG value changes the key of every RUN after it, not the ARG line (ref §ARG Impact on build caching)', (t) => {
  const text = 'FROM ubuntu\nARG CONT_IMG_VER\nRUN echo hello\n';
  t.not(lastRun(text, { CONT_IMG_VER: '1' }).key, lastRun(text, { CONT_IMG_VER: '2' }).key);
  const constant = 'FROM ubuntu\nARG CONT_IMG_VER\nENV CONT_IMG_VER=hello\nRUN echo $CONT_IMG_VER\n';
  t.is(lastRun(constant, { CONT_IMG_VER: '1' }).key, lastRun(constant, { CONT_IMG_VER: '2' }).key, 'an ENV of constant value hides the build arg');
});

test('a COPY key depends on the ARGs its words use, not on others', (t) => {
  const copyKey = (args: Record<string, string>) =>
    copySteps(runDockerfile('FROM alpine\nARG DIR=a OTHER=x\nCOPY $DIR /d/\n', { buildArgs: args }).target)[0]!.key;
  t.not(copyKey({ DIR: 'b' }), copyKey({}));
  t.is(copyKey({ OTHER: 'y' }), copyKey({}));
});

const histories = (text: string): string[] => runDockerfile(text).target.steps.map((s: Step) => s.history);

test('history lines follow BuildKit: ARG, ENV, LABEL, VOLUME, SHELL, USER, CMD quoting', (t) => {
  t.deepEqual(
    histories(
      'FROM alpine\nARG A=1 B\nENV X=1 Y="two words"\nLABEL l=$A\nVOLUME ["/a", "/b"]\nSHELL ["/bin/bash", "-c"]\nUSER 1000:1000\nCMD ["say", "\\"hi\\"\\n"]\n',
    ),
    ['ARG A=1 B', 'ENV X=1 Y=two words', 'LABEL l=1', 'VOLUME [/a /b]', 'SHELL [/bin/bash -c]', 'USER 1000:1000', 'CMD ["say" "\\"hi\\"\\n"]'],
  );
});

test('CMD sets ArgsEscaped as BuildKit does; exec-form [] is empty, ENTRYPOINT [] is unset', (t) => {
  const { config } = runDockerfile('FROM alpine\nENTRYPOINT []\nCMD []\n').target;
  t.true(config.ArgsEscaped);
  t.deepEqual(config.Cmd, []);
  t.is(config.Entrypoint, null);
});

test('WORKDIR steps carry the folder and the user who will own it when created (ref §WORKDIR)', (t) => {
  const step = runDockerfile('FROM alpine\nUSER app\nWORKDIR /srv/data\n').target.steps.at(-1)!;
  t.like(step, { kind: 'workdir', path: '/srv/data', user: 'app', history: 'WORKDIR /srv/data' });
});

test('a #! RUN heredoc is handed over as a file at /dev/pipes/NAME', (t) => {
  const step = lastRun('FROM alpine\nRUN <<-EOF\n\t#!/bin/sh\n\techo hi\n\tEOF\n');
  t.deepEqual(step.heredocFiles, [{ name: 'EOF', content: '#!/bin/sh\necho hi\n', path: '/dev/pipes/EOF' }]);
  t.deepEqual(step.argv, ['/bin/sh', '-c', '/dev/pipes/EOF']);
});

test('EXPOSE accepts ip:host:container specs and exposes the container port', (t) => {
  t.deepEqual(runDockerfile('FROM alpine\nEXPOSE 127.0.0.1:8080:80/udp\n').target.config.ExposedPorts, { '80/udp': {} });
});

test('STOPSIGNAL takes any signal name or number Linux knows', (t) => {
  for (const s of ['SIGRTMIN+3', 'rtmax-1', 'QUIT', '37']) t.is(runDockerfile(`FROM alpine\nSTOPSIGNAL ${s}\n`).target.config.StopSignal, s);
  t.throws(() => runDockerfile('FROM alpine\nSTOPSIGNAL 0\n'), { message: /invalid signal: 0/ });
});

test('MAINTAINER sets the author, outside the runtime config', (t) => {
  const run = runDockerfile('FROM alpine\nMAINTAINER Jane <jane@example.com>\n');
  t.is(run.target.author, 'Jane <jane@example.com>');
});
