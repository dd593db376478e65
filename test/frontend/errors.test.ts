/**
 * Errors for people: every problem the front end reports is a LadingError with a location
 * (file, line, column, the offending line) so describe() shows `Dockerfile:LINE:COL`, the line
 * and a hint; several problems come together; misspellings get a suggestion. Messages follow
 * BuildKit's wording where it has one.
 */
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { BuildContext } from '../../src/context/context.ts';
import { IgnoreMatcher, parseDockerignore } from '../../src/context/dockerignore.ts';
import { contextMatches } from '../../src/engine/copy-sources.ts';
import { ERROR_CODES, LadingError, type ErrorCode } from '../../src/errors.ts';
import { runDockerfile } from './semantics-run.ts';

interface Expected {
  message: RegExp;
  line: number;
  column: number;
  hint: RegExp;
  code?: ErrorCode;
}

/** Load and dispatch `text`; it must fail with the expected first problem. */
function fails(t: ExecutionContext, text: string, e: Expected, options: Parameters<typeof runDockerfile>[1] = {}): LadingError {
  const err = t.throws(() => runDockerfile(text, options), { instanceOf: LadingError });
  t.regex(err.message, e.message);
  t.is(err.code, e.code ?? ERROR_CODES.DOCKERFILE_INVALID);
  t.is(err.location?.file, 'Dockerfile');
  t.is(err.location?.line, e.line, 'line');
  t.is(err.location?.column, e.column, 'column');
  t.is(err.location?.text, text.split('\n')[e.line - 1], 'the offending line');
  t.regex(err.hint ?? '', e.hint);
  const shown = err.describe();
  t.true(shown.startsWith(`Dockerfile:${e.line}:${e.column}: `), shown);
  t.true(shown.includes(`  | ${text.split('\n')[e.line - 1]}`), shown);
  t.true(shown.includes('  hint: '), shown);
  return err;
}

// ----- instructions and flags -----------------------------------------------------------------

test('an unknown instruction suggests the closest one', (t) => {
  fails(t, 'FROM alpine\nRUNN echo hi\n', { message: /^unknown instruction: RUNN$/, line: 2, column: 1, hint: /did you mean RUN\?/ });
  fails(t, 'FROM alpine\n  ENTRYPIONT ["x"]\n', { message: /unknown instruction: ENTRYPIONT/, line: 2, column: 3, hint: /did you mean ENTRYPOINT\?/ });
  fails(t, 'FROM alpine\nFOOBAR x\n', { message: /unknown instruction: FOOBAR/, line: 2, column: 1, hint: /instructions are FROM, RUN/ });
});

test('an unknown flag suggests the closest one and points at the flag', (t) => {
  fails(t, 'FROM alpine AS build\nFROM alpine\nCOPY --form=build /a /b\n', { message: /^unknown flag --form for COPY$/, line: 3, column: 6, hint: /did you mean --from\?/ });
  fails(t, 'FROM alpine\nRUN --mout=type=cache,target=/x true\n', { message: /unknown flag --mout for RUN/, line: 2, column: 5, hint: /did you mean --mount\?/ });
  fails(t, 'FROM alpine\nADD --from=x a b\n', { message: /unknown flag --from for ADD/, line: 2, column: 5, hint: /ADD accepts --chown, --chmod/ });
  fails(t, 'FROM alpine\nCMD --verbose ["x"]\n', { message: /unknown flag --verbose for CMD/, line: 2, column: 5, hint: /CMD takes no flags/ });
});

test('flag names are case-sensitive, as in BuildKit', (t) => {
  fails(t, 'FROM alpine\nCOPY --LINK a b\n', { message: /unknown flag --LINK for COPY/, line: 2, column: 6, hint: /did you mean --link\?/ });
});

test('a flag without its value, a repeated flag and a bad boolean are errors', (t) => {
  fails(t, 'FROM alpine\nCOPY --chown a b\n', { message: /missing a value on flag --chown/, line: 2, column: 6, hint: /--chown=VALUE/ });
  fails(t, 'FROM alpine\nCOPY --chmod=600 --chmod=644 a b\n', { message: /duplicate flag --chmod/, line: 2, column: 18, hint: /once/ });
  fails(t, 'FROM alpine\nCOPY --link=maybe a b\n', { message: /--link expects a boolean value, not "maybe"/, line: 2, column: 6, hint: /--link=true/ });
  fails(t, 'FROM alpine\nCOPY --link= a b\n', { message: /missing a value on flag --link/, line: 2, column: 6, hint: /--link=false/ });
});

test('an empty string flag means "not given", as in BuildKit', (t) => {
  const run = runDockerfile('FROM alpine\nCOPY --chown= --from= a /b\n');
  const step = run.target.steps[0]!;
  t.true(step.kind === 'copy' && step.chown === undefined && step.from === undefined);
});

test('RUN --network and --security take known values', (t) => {
  fails(t, 'FROM alpine\nRUN --network=bridge true\n', { message: /unsupported network mode "bridge"/, line: 2, column: 15, hint: /default, none or host/ });
  fails(t, 'FROM alpine\nRUN --security=root true\n', { message: /unsupported security mode "root"/, line: 2, column: 16, hint: /sandbox or insecure/ });
});

// ----- FROM and stages ----------------------------------------------------------------------------

test('FROM x AS without a name says what is missing', (t) => {
  fails(t, 'FROM alpine AS\n', { message: /the stage name after AS is missing/, line: 1, column: 13, hint: /FROM alpine AS NAME/ });
});

test('FROM with a wrong second word, too many words, or an invalid stage name', (t) => {
  fails(t, 'FROM alpine IS build\n', { message: /FROM requires either one or three arguments/, line: 1, column: 13, hint: /must be AS/ });
  fails(t, 'FROM a b\n', { message: /FROM requires either one or three arguments/, line: 1, column: 1, hint: /FROM IMAGE AS NAME/ });
  fails(t, 'FROM alpine AS 1st\n', { message: /invalid name for build stage: "1st", name can't start with a number or contain symbols/, line: 1, column: 16, hint: /start with a letter/ });
});

test('a --from that nearly names a stage is a typo with a suggestion', (t) => {
  fails(t, 'FROM golang AS build\nFROM alpine\nCOPY --from=biuld /app /app\n', { message: /--from=biuld names no stage/, line: 3, column: 8, hint: /did you mean build\?/ });
  fails(t, 'FROM golang AS build\nFROM alpine\nRUN --mount=from=buidl,target=/b true\n', { message: /--from=buidl names no stage/, line: 3, column: 13, hint: /did you mean build\?/ });
});

test('a --from index past the last stage', (t) => {
  fails(t, 'FROM alpine\nFROM alpine\nCOPY --from=2 /a /a\n', { message: /invalid stage index 2: the Dockerfile has 2 stages/, line: 3, column: 8, hint: /start at 0/ });
});

test('--from does not expand variables (BuildKit refuses them)', (t) => {
  fails(t, 'ARG SRC=build\nFROM alpine AS build\nFROM alpine\nCOPY --from=$SRC /a /a\n', { message: /variable expansion is not supported for --from/, line: 4, column: 13, hint: /FROM \$\{NAME\} AS alias/ });
  fails(t, 'FROM alpine\nRUN --mount=from=${X},target=/x true\n', { message: /'from' in --mount doesn't support variable expansion/, line: 2, column: 13, hint: /alias/ });
});

test('copying from a stage defined later is refused (BuildKit dispatches stages in order)', (t) => {
  fails(t, 'FROM alpine AS a\nCOPY --from=b /x /y\nFROM alpine AS b\n', { message: /cannot copy from stage "b", it needs to be defined before current stage "a"/, line: 2, column: 8, hint: /move stage b \(line 3\) above line 1/ }, { target: 'a' });
});

test('a cycle between stages', (t) => {
  fails(t, 'FROM alpine AS x\nCOPY --from=y /a /b\nFROM alpine AS y\nCOPY --from=x /a /b\n', { message: /circular dependency detected on stage: x/, line: 1, column: 1, hint: /break the cycle/ });
});

test('FROM with a stage name in capitals is refused with the lowercase spelling', (t) => {
  fails(t, 'FROM alpine AS build\nFROM Build\n', { message: /stage names are lowercase in FROM/, line: 2, column: 1, hint: /FROM build/ });
});

test('instructions before the first FROM, and a FROM that expands to nothing', (t) => {
  fails(t, 'ENV A=1\nFROM alpine\n', { message: /ENV comes before the first FROM/, line: 1, column: 1, hint: /only ARG may come before FROM/ });
  fails(t, 'ARG IMAGE\nFROM $IMAGE\n', { message: /base name \(\$IMAGE\) should not be blank/, line: 2, column: 1, hint: /--build-arg/ });
  fails(t, 'FROM --platform=$NOPE alpine\n', { message: /empty platform value from expression \$NOPE/, line: 1, column: 1, hint: /BUILDPLATFORM/ });
});

test('a misspelt --target suggests the stage (a usage error: it comes from the command line)', (t) => {
  const err = t.throws(() => runDockerfile('FROM alpine AS build\nFROM alpine AS release\n', { target: 'relase' }), { instanceOf: LadingError });
  t.is(err.code, ERROR_CODES.USAGE);
  t.is(err.message, 'target stage "relase" could not be found in Dockerfile');
  t.is(err.hint, 'did you mean release?');
  const none = t.throws(() => runDockerfile('FROM alpine AS build\n', { target: 'xyz' }), { instanceOf: LadingError });
  t.is(none.hint, 'the named stages are build');
});

// ----- heredocs, arity, values ---------------------------------------------------------------------

test('an unterminated heredoc points at its opener (a parse error)', (t) => {
  fails(t, 'FROM alpine\nRUN <<EOF\necho hi\n', { message: /unterminated heredoc: no line "EOF" ends the here-document/, line: 2, column: 5, hint: /exactly "EOF"/, code: ERROR_CODES.DOCKERFILE_PARSE });
});

test('COPY and ADD need a destination; a heredoc cannot be one', (t) => {
  fails(t, 'FROM alpine\nCOPY onlyone\n', { message: /COPY requires at least two arguments, but only one was provided/, line: 2, column: 1, hint: /COPY SOURCE\.\.\. DEST/ });
  fails(t, 'FROM alpine\nCOPY a <<EOF\nx\nEOF\n', { message: /COPY cannot accept a heredoc as a destination/, line: 2, column: 8, hint: /<<EOF DEST/ });
});

test('mount options: unknown keys suggest, bare keys and bad values are refused', (t) => {
  fails(t, 'FROM alpine\nRUN --mount=type=cache,targt=/x true\n', { message: /unexpected key 'targt' in 'targt=\/x'/, line: 2, column: 13, hint: /did you mean target\?/ });
  fails(t, 'FROM alpine\nRUN --mount=type=cahce,target=/x true\n', { message: /unsupported mount type "cahce"/, line: 2, column: 13, hint: /did you mean cache\?/ });
  fails(t, 'FROM alpine\nRUN --mount=type=cache,target true\n', { message: /invalid field 'target' must be a key=value pair/, line: 2, column: 13, hint: /target=VALUE/ });
  fails(t, 'FROM alpine\nRUN --mount=type=bind,target=/x,sharing=locked true\n', { message: /invalid cache sharing set for bind mount/, line: 2, column: 13, hint: /cache mounts/ });
  fails(t, 'FROM alpine\nRUN --mount=type=tmpfs,target=/x,mode=0700 true\n', { message: /mode not allowed for "tmpfs" type mounts/, line: 2, column: 13, hint: /cache, secret and ssh/ });
  fails(t, 'FROM alpine\nRUN --mount=type=secret true\n', { message: /invalid secret mount/, line: 2, column: 13, hint: /id=NAME/ });
  fails(t, 'FROM alpine\nRUN --mount=type=bind true\n', { message: /--mount=type=bind needs a target/, line: 2, column: 13, hint: /target=\/path/ });
});

test('mount values with variables are checked after expansion', (t) => {
  fails(t, 'FROM alpine\nARG T=cahce\nRUN --mount=type=$T,target=/x true\n', { message: /unsupported mount type "cahce"/, line: 3, column: 1, hint: /did you mean cache\?/ });
});

test('ONBUILD cannot chain, nor trigger FROM or MAINTAINER', (t) => {
  fails(t, 'FROM alpine\nONBUILD ONBUILD RUN x\n', { message: /chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed/, line: 2, column: 9, hint: /single ONBUILD/ });
  fails(t, 'FROM alpine\nONBUILD FROM x\n', { message: /FROM isn't allowed as an ONBUILD trigger/, line: 2, column: 9, hint: /except MAINTAINER/ });
  fails(t, 'FROM alpine\nonbuild maintainer me\n', { message: /MAINTAINER isn't allowed as an ONBUILD trigger/, line: 2, column: 9, hint: /except MAINTAINER/ });
});

test('HEALTHCHECK: unknown type, bad duration, negative retries', (t) => {
  fails(t, 'FROM alpine\nHEALTHCHECK RUN curl x\n', { message: /unknown type "RUN" in HEALTHCHECK \(try CMD\)/, line: 2, column: 13, hint: /HEALTHCHECK CMD COMMAND/ });
  fails(t, 'FROM alpine\nHEALTHCHECK --interval=5 CMD x\n', { message: /invalid duration "5" for --interval/, line: 2, column: 24, hint: /30s/ });
  fails(t, 'FROM alpine\nHEALTHCHECK --timeout=10us CMD x\n', { message: /--timeout cannot be less than 1ms/, line: 2, column: 23, hint: /at least 1ms/ });
  fails(t, 'FROM alpine\nHEALTHCHECK --retries=-1 CMD x\n', { message: /--retries cannot be negative/, line: 2, column: 23, hint: /positive count/ });
});

test('values that only fail once expanded: VOLUME, STOPSIGNAL, EXPOSE, --chmod', (t) => {
  fails(t, 'FROM alpine\nVOLUME $NOPE\n', { message: /VOLUME specified can not be an empty string/, line: 2, column: 1, hint: /give it a value/ });
  fails(t, 'FROM alpine\nSTOPSIGNAL SIGNOPE\n', { message: /invalid signal: SIGNOPE/, line: 2, column: 1, hint: /SIGTERM/ });
  fails(t, 'FROM alpine\nEXPOSE 80/tcpx\n', { message: /invalid proto: tcpx/, line: 2, column: 1, hint: /NUMBER\/udp/ });
  fails(t, 'FROM alpine\nEXPOSE 70000\n', { message: /invalid containerPort: 70000/, line: 2, column: 1, hint: /range/ });
  fails(t, 'FROM alpine\nCOPY --chmod=u+q a /a\n', { message: /invalid chmod parameter: 'u\+q'/, line: 2, column: 1, hint: /octal/ });
});

test('an expansion error points at the word', (t) => {
  const err = fails(t, 'FROM alpine\nWORKDIR ${DIR:?DIR must be set}\n', { message: /DIR must be set/, line: 2, column: 9, hint: /./ });
  t.deepEqual(err.details.word, '${DIR:?DIR must be set}');
});

test('SHELL must be JSON; ARG names cannot be blank', (t) => {
  fails(t, 'FROM alpine\nSHELL /bin/bash -c\n', { message: /SHELL requires the arguments to be in JSON form/, line: 2, column: 1, hint: /SHELL \["\/bin\/bash","-c"\]/ });
  fails(t, 'FROM alpine\nARG =x\n', { message: /ARG names can not be blank/, line: 2, column: 5, hint: /ARG NAME=DEFAULT/ });
});

// ----- several at once ---------------------------------------------------------------------------

test('several problems are reported together, in file order', (t) => {
  const text = 'FROM alpine\nRUNN a\nCOPY --chwon=1 a b\nFROM x AS\n';
  const err = fails(t, text, { message: /unknown instruction: RUNN/, line: 2, column: 1, hint: /did you mean RUN\?/ });
  t.deepEqual(
    [err, ...err.related].map((e) => [e.location?.line, e.location?.column, e.message]),
    [
      [2, 1, 'unknown instruction: RUNN'],
      [3, 6, 'unknown flag --chwon for COPY'],
      [4, 8, 'FROM requires either one or three arguments: the stage name after AS is missing'],
    ],
  );
  const shown = err.describe().split('\n');
  t.deepEqual(shown.filter((l) => /^Dockerfile:\d+:\d+: /.test(l)).map((l) => l.split(': ')[0]), ['Dockerfile:2:1', 'Dockerfile:3:6', 'Dockerfile:4:8']);
  t.true(shown.includes('  hint: did you mean --chown?'));
});

test('graph problems are collected across stages too', (t) => {
  const err = t.throws(() => runDockerfile('FROM alpine AS a\nCOPY --from=9 / /\nFROM $NOPE\nCOPY --from=b1uild / /\nFROM alpine AS build\n'), { instanceOf: LadingError });
  t.deepEqual([err, ...err.related].map((e) => e.location?.line), [2, 3, 4]);
});

// ----- the engine's COPY source error ---------------------------------------------------------------

test('a COPY source that matches nothing names the source, the line and what to do', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'lading-errors-'));
  try {
    await mkdir(path.join(dir, 'src'));
    await writeFile(path.join(dir, 'src', 'a.txt'), 'a');
    await writeFile(path.join(dir, 'secret.env'), 'x');
    const location = { file: 'Dockerfile', line: 4, column: 1, text: 'COPY missing.txt /app/' };
    const context = await BuildContext.open(dir);
    const err = await t.throwsAsync(contextMatches(context, ['missing.txt'], [], location, 'COPY'), { instanceOf: LadingError });
    t.is(err.code, ERROR_CODES.CONTEXT);
    t.is(err.message, 'COPY source "missing.txt" matches nothing in the build context');
    t.deepEqual(err.location, location);
    t.regex(err.hint ?? '', /relative to the context folder/);
    t.true(err.describe().startsWith('Dockerfile:4:1: COPY source "missing.txt" matches nothing'));
    const wildcard = await t.throwsAsync(contextMatches(context, ['src/*.md'], [], location, 'COPY'), { instanceOf: LadingError });
    t.regex(wildcard.message, /"src\/\*\.md" matches nothing/);

    const ignoring = await BuildContext.open(dir, { ignore: new IgnoreMatcher(parseDockerignore('*.env\n', '.dockerignore')) });
    const ignored = await t.throwsAsync(contextMatches(ignoring, ['secret.env'], [], location, 'COPY'), { instanceOf: LadingError });
    t.regex(ignored.hint ?? '', /excluded by \.dockerignore/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
