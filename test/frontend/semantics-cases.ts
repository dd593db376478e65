/**
 * Table of Dockerfile semantics cases: ARG scoping, ENV/ARG precedence, variable expansion and
 * COPY destinations as the dispatcher sees them. Each case cites the rule it checks, from the
 * Dockerfile reference (https://docs.docker.com/reference/dockerfile/, "ref §Section") or, where
 * the reference is silent, from BuildKit's behaviour ("BuildKit:" with where it shows).
 *
 * Driven by semantics.test.ts through loadDockerfile() and the dispatcher; no files or network.
 */
import type { ContainerConfig } from '../../src/image/types.ts';

export interface DispatchExpect {
  /** What the target stage starts from: an image reference, `stage:N` or `scratch`. */
  base?: string;
  /** The last RUN step's environment: a value, or null for "not set". */
  runEnv?: Record<string, string | null>;
  runHistory?: string;
  argv?: string[];
  /** The final image config's Env: a value, or null for "not set". */
  configEnv?: Record<string, string | null>;
  /** Fields of the final image config, compared exactly. */
  config?: Partial<ContainerConfig>;
  /** Every step's history text in the target stage, in order. */
  history?: string[];
  /** Fields of the last COPY/ADD step, compared exactly. */
  copy?: Record<string, unknown>;
  /** Each must match one warning. */
  warnings?: RegExp[];
  noWarnings?: boolean;
  error?: { message: RegExp; line?: number };
}

export interface DispatchCase {
  name: string;
  /** The documented rule this case checks. */
  rule: string;
  dockerfile: string;
  buildArgs?: Record<string, string>;
  target?: string;
  /** Configs of the base images the Dockerfile names. */
  images?: Record<string, ContainerConfig>;
  expect: DispatchExpect;
}

const PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const df = (...lines: string[]): string => `${lines.join('\n')}\n`;

export const argCases: DispatchCase[] = [
  {
    name: 'a global ARG is usable in FROM',
    rule: 'ref §Understand how ARG and FROM interact: FROM supports variables declared by ARGs before the first FROM',
    dockerfile: df('ARG CODE_VERSION=latest', 'FROM base:${CODE_VERSION}', 'CMD /code/run-app'),
    expect: { base: 'base:latest' },
  },
  {
    name: 'the same global ARG serves every FROM',
    rule: 'ref §Understand how ARG and FROM interact (the two-stage CODE_VERSION example)',
    dockerfile: df('ARG CODE_VERSION=latest', 'FROM base:${CODE_VERSION}', 'FROM extras:${CODE_VERSION}'),
    expect: { base: 'extras:latest' },
  },
  {
    name: 'a global ARG is not visible inside a stage that does not redeclare it',
    rule: 'ref §Understand how ARG and FROM interact: an ARG declared before a FROM can\'t be used in any instruction after a FROM',
    dockerfile: df('ARG VERSION=latest', 'FROM busybox:$VERSION', 'ENV SEEN=x$VERSION', 'RUN echo $VERSION > image_version'),
    expect: { runEnv: { VERSION: null }, configEnv: { SEEN: 'x' } },
  },
  {
    name: 'ARG NAME without a value inside a stage takes the global default',
    rule: 'ref §Understand how ARG and FROM interact: to use the default value of an ARG declared before the first FROM use an ARG without a value inside the stage',
    dockerfile: df('ARG VERSION=latest', 'FROM busybox:$VERSION', 'ARG VERSION', 'RUN echo $VERSION > image_version'),
    expect: { runEnv: { VERSION: 'latest' }, runHistory: 'RUN |1 VERSION=latest /bin/sh -c echo $VERSION > image_version' },
  },
  {
    name: 'a build arg replaces a global default in FROM and in the stage',
    rule: 'ref §ARG: users pass values with --build-arg; §Understand how ARG and FROM interact',
    dockerfile: df('ARG VERSION=latest', 'FROM busybox:$VERSION', 'ARG VERSION', 'RUN true'),
    buildArgs: { VERSION: '1.36' },
    expect: { base: 'busybox:1.36', runEnv: { VERSION: '1.36' } },
  },
  {
    name: 'a stage ARG with its own default ignores the global default',
    rule: 'ref §ARG Default values: the builder uses the ARG instruction\'s default when no value is passed',
    dockerfile: df('ARG V=global', 'FROM busybox', 'ARG V=local', 'RUN true'),
    expect: { runEnv: { V: 'local' } },
  },
  {
    name: 'a build arg overrides a stage ARG default',
    rule: 'ref §ARG Default values: a default is used only if no value is passed at build time',
    dockerfile: df('FROM busybox', 'ARG user1=someuser', 'ARG buildno=1', 'RUN true'),
    buildArgs: { user1: 'what_user' },
    expect: { runEnv: { user1: 'what_user', buildno: '1' } },
  },
  {
    name: 'an ARG comes into effect on the line that declares it',
    rule: 'ref §ARG Scope: USER ${username:-some_user} before ARG username evaluates to the fallback, after it to the build arg',
    dockerfile: df('FROM busybox', 'USER ${username:-some_user}', 'ARG username', 'USER $username'),
    buildArgs: { username: 'what_user' },
    expect: { history: ['USER some_user', 'ARG username=what_user', 'USER what_user'], config: { User: 'what_user' } },
  },
  {
    name: 'before its ARG a variable expands to the empty string',
    rule: 'ref §ARG Scope: prior to its definition by an ARG instruction, any use of a variable results in an empty string',
    dockerfile: df('FROM busybox', 'ENV A=[$B]', 'ARG B=1', 'ENV C=[$B]'),
    expect: { configEnv: { A: '[]', C: '[1]' } },
  },
  {
    name: 'an ARG of one stage is not visible in an unrelated stage',
    rule: 'ref §ARG Scope: unrelated build stages do not have access to the variable',
    dockerfile: df('FROM busybox AS one', 'ARG X=1', 'FROM busybox', 'RUN echo $X'),
    expect: { runEnv: { X: null }, runHistory: 'RUN /bin/sh -c echo $X' },
  },
  {
    name: 'an ARG is inherited by a stage based on the stage that declares it',
    rule: 'ref §ARG Scope: an ARG declared within a build stage is automatically inherited by other stages based on that stage',
    dockerfile: df('FROM busybox AS base', 'ARG LOCAL_ARG="local arg in stage-a"', 'FROM base AS child', 'RUN echo $LOCAL_ARG'),
    expect: { base: 'stage:0', runEnv: { LOCAL_ARG: 'local arg in stage-a' }, runHistory: 'RUN |1 LOCAL_ARG=local arg in stage-a /bin/sh -c echo $LOCAL_ARG' },
  },
  {
    name: 'an inherited ARG is visible to expansion in the child stage too',
    rule: 'ref §ARG Scope (inherited by stages based on that stage); ref §Environment replacement (WORKDIR expands variables)',
    dockerfile: df('FROM busybox AS base', 'ARG DIR=/srv', 'FROM base', 'WORKDIR $DIR/app'),
    expect: { config: { WorkingDir: '/srv/app' } },
  },
  {
    name: 'ARG values are not stored in the image config',
    rule: 'ref §ARG: unlike ENV, an ARG variable is not embedded in the image',
    dockerfile: df('FROM busybox', 'ARG SECRETISH=1', 'RUN true'),
    expect: { configEnv: { SECRETISH: null, PATH } },
  },
  {
    name: 'ARG values reach RUN as environment variables',
    rule: 'ref §ARG: it is also passed to all subsequent RUN instructions as a build-time environment variable',
    dockerfile: df('FROM busybox', 'ARG A=1 B=two', 'RUN env'),
    expect: { runEnv: { A: '1', B: 'two' }, runHistory: 'RUN |2 A=1 B=two /bin/sh -c env' },
  },
  {
    name: 'an ARG without a value or build arg is unset for RUN but listed empty in history',
    rule: 'ref §ARG Impact on build caching (RUN is identified with its ARGs); BuildKit: runCommandString lists every declared ARG (moby/buildkit#915 for the unset case)',
    dockerfile: df('FROM busybox', 'ARG CONT_IMG_VER', 'RUN echo hello'),
    expect: { runEnv: { CONT_IMG_VER: null }, runHistory: 'RUN |1 CONT_IMG_VER= /bin/sh -c echo hello' },
  },
  {
    name: 'a build arg passed for a declared ARG identifies the RUN that follows',
    rule: 'ref §ARG Impact on build caching: ARG CONT_IMG_VER makes RUN the same as running CONT_IMG_VER=<value> echo hello',
    dockerfile: df('FROM ubuntu', 'ARG CONT_IMG_VER', 'RUN echo hello'),
    buildArgs: { CONT_IMG_VER: 'v2.0.1' },
    expect: { runEnv: { CONT_IMG_VER: 'v2.0.1' }, runHistory: 'RUN |1 CONT_IMG_VER=v2.0.1 /bin/sh -c echo hello' },
  },
  {
    name: 'an ARG default may use an earlier ARG',
    rule: 'ref §ARG: an ARG can be used in subsequent instructions with ${VAR}; §Environment replacement (ARG is not in the list, but BuildKit expands defaults)',
    dockerfile: df('FROM busybox', 'ARG A=1', 'ARG B=${A}x', 'RUN true'),
    expect: { runEnv: { A: '1', B: '1x' } },
  },
  {
    name: 'a global ARG default may use an earlier global ARG',
    rule: 'ref §Understand how ARG and FROM interact; BuildKit: global ARGs are expanded in order',
    dockerfile: df('ARG REG=docker.io', 'ARG IMG=${REG}/library/alpine', 'FROM $IMG'),
    expect: { base: 'docker.io/library/alpine' },
  },
  {
    name: 'redeclaring a global ARG without a value keeps its value',
    rule: 'BuildKit: buildMetaArgs only replaces a value when the ARG has one or a build arg is passed',
    dockerfile: df('ARG V=1', 'ARG V', 'FROM busybox:$V'),
    expect: { base: 'busybox:1' },
  },
  {
    name: 'a global ARG is empty in a stage instruction other than FROM',
    rule: 'ref §Understand how ARG and FROM interact: a global ARG can\'t be used after FROM without redeclaring it',
    dockerfile: df('ARG DIR=/opt', 'FROM busybox', 'WORKDIR /$DIR/x'),
    expect: { config: { WorkingDir: '/x' } },
  },
  {
    name: 'automatic platform ARGs are usable in FROM without declaration',
    rule: 'ref §Automatic platform ARGs in the global scope: these arguments are defined in the global scope',
    dockerfile: df('FROM --platform=$BUILDPLATFORM golang:1.22-$TARGETOS-$TARGETARCH'),
    expect: { base: 'golang:1.22-linux-arm64' },
  },
  {
    name: 'automatic platform ARGs are not in a stage until declared',
    rule: 'ref §Automatic platform ARGs in the global scope: not automatically available inside build stages or for your RUN commands',
    dockerfile: df('FROM alpine', 'RUN echo "I\'m building for $TARGETPLATFORM"'),
    expect: { runEnv: { TARGETPLATFORM: null } },
  },
  {
    name: 'ARG TARGETPLATFORM without a value exposes it in the stage',
    rule: 'ref §Automatic platform ARGs in the global scope: to expose one inside the build stage redefine it without value',
    dockerfile: df('FROM alpine', 'ARG TARGETPLATFORM', 'RUN echo "I\'m building for $TARGETPLATFORM"'),
    expect: { runEnv: { TARGETPLATFORM: 'linux/arm64/v8' } },
  },
  {
    name: 'every automatic platform ARG has its component value',
    rule: 'ref §Automatic platform ARGs in the global scope: TARGETPLATFORM, TARGETOS, TARGETARCH, TARGETVARIANT, BUILDPLATFORM, BUILDOS, BUILDARCH, BUILDVARIANT',
    dockerfile: df('FROM alpine', 'ARG TARGETPLATFORM TARGETOS TARGETARCH TARGETVARIANT BUILDPLATFORM BUILDOS BUILDARCH BUILDVARIANT', 'RUN true'),
    expect: {
      runEnv: {
        TARGETPLATFORM: 'linux/arm64/v8',
        TARGETOS: 'linux',
        TARGETARCH: 'arm64',
        TARGETVARIANT: 'v8',
        BUILDPLATFORM: 'linux/amd64',
        BUILDOS: 'linux',
        BUILDARCH: 'amd64',
        BUILDVARIANT: '',
      },
    },
  },
  {
    name: 'a global ARG with a default replaces an automatic one in FROM',
    rule: 'BuildKit: buildMetaArgs adds a global ARG\'s value over the automatic ones (AddOrReplace)',
    dockerfile: df('ARG TARGETARCH=riscv64', 'FROM img-$TARGETARCH'),
    expect: { base: 'img-riscv64' },
  },
  {
    name: 'a build arg can override an automatic platform ARG',
    rule: 'BuildKit: defaultArgs takes a --build-arg of the same name over the platform value',
    dockerfile: df('FROM alpine', 'ARG TARGETARCH', 'RUN true'),
    buildArgs: { TARGETARCH: 'amd64' },
    expect: { runEnv: { TARGETARCH: 'amd64' } },
  },
  {
    name: 'a proxy build arg reaches RUN without an ARG instruction',
    rule: 'ref §Predefined ARGs: HTTP_PROXY and friends can be used without a corresponding ARG instruction',
    dockerfile: df('FROM ubuntu', 'RUN echo "Hello World"'),
    buildArgs: { HTTPS_PROXY: 'https://my-proxy.example.com' },
    expect: { runEnv: { HTTPS_PROXY: 'https://my-proxy.example.com', https_proxy: 'https://my-proxy.example.com' } },
  },
  {
    name: 'a proxy build arg is kept out of history and config',
    rule: 'ref §Predefined ARGs: by default these are excluded from the output of docker history',
    dockerfile: df('FROM ubuntu', 'RUN echo "Hello World"'),
    buildArgs: { HTTP_PROXY: 'http://user:pass@proxy.lon.example.com' },
    expect: { runHistory: 'RUN /bin/sh -c echo "Hello World"', configEnv: { HTTP_PROXY: null }, noWarnings: true },
  },
  {
    name: 'a declared proxy ARG is an ordinary ARG and shows in history',
    rule: 'ref §Predefined ARGs: adding ARG HTTP_PROXY preserves it in the docker history',
    dockerfile: df('FROM ubuntu', 'ARG HTTP_PROXY', 'RUN echo "Hello World"'),
    buildArgs: { HTTP_PROXY: 'http://user:pass@proxy.lon.example.com' },
    expect: { runHistory: 'RUN |1 HTTP_PROXY=http://user:pass@proxy.lon.example.com /bin/sh -c echo "Hello World"' },
  },
  {
    name: 'an unused --build-arg is a warning, not an error',
    rule: 'ref §ARG (a build arg without ARG is not consumed); Docker warns "One or more build-args were not consumed"',
    dockerfile: df('FROM busybox', 'RUN true'),
    buildArgs: { NOT_DECLARED: '1' },
    expect: { warnings: [/NOT_DECLARED was not consumed/], runEnv: { NOT_DECLARED: null } },
  },
  {
    name: 'a build arg consumed by a global ARG only is not unused',
    rule: 'ref §Understand how ARG and FROM interact (global ARGs take build args)',
    dockerfile: df('ARG TAG=1', 'FROM busybox:$TAG'),
    buildArgs: { TAG: '2' },
    expect: { noWarnings: true, base: 'busybox:2' },
  },
  {
    name: 'a build arg declared only in a stage the target does not need is unused',
    rule: 'ref §ARG Scope (an ARG belongs to its stage); Dockerfile reference on --target (only needed stages are built)',
    dockerfile: df('FROM busybox AS other', 'ARG ONLY_HERE', 'FROM busybox AS wanted', 'RUN true'),
    buildArgs: { ONLY_HERE: 'x' },
    target: 'wanted',
    expect: { warnings: [/ONLY_HERE was not consumed/] },
  },
  {
    name: 'an ARG with an empty default is set, to the empty string',
    rule: 'ref §ARG Default values (a default is a value, even empty)',
    dockerfile: df('FROM busybox', 'ARG EMPTY=', 'RUN true'),
    expect: { runEnv: { EMPTY: '' } },
  },
  {
    name: 'an ARG default can read the base image\'s ENV',
    rule: 'ref §Environment replacement and §ENV: a base image\'s environment is in effect in the stage',
    dockerfile: df('FROM node', 'ARG DIR=$HOME/app', 'RUN true'),
    images: { node: { Env: [`PATH=${PATH}`, 'HOME=/home/node'] } },
    expect: { runEnv: { DIR: '/home/node/app', HOME: '/home/node' } },
  },
  {
    name: 'the build arg wins over the ARG default even when the default is set',
    rule: 'ref §ARG Default values',
    dockerfile: df('FROM busybox', 'ARG LEVEL=debug', 'ENV LEVEL_SEEN=$LEVEL'),
    buildArgs: { LEVEL: 'info' },
    expect: { configEnv: { LEVEL_SEEN: 'info' } },
  },
  {
    name: 'FROM --platform takes global ARGs, and TARGETARCH stays the build\'s target inside',
    rule: 'ref §FROM: --platform=$BUILDPLATFORM forces the native platform to cross-compile to the target platform inside the stage',
    dockerfile: df('FROM --platform=$BUILDPLATFORM golang AS build', 'ARG TARGETOS TARGETARCH', 'RUN GOOS=$TARGETOS GOARCH=$TARGETARCH go build'),
    expect: { runEnv: { TARGETOS: 'linux', TARGETARCH: 'arm64' } },
  },
];

export const envCases: DispatchCase[] = [
  {
    name: 'ENV after ARG of the same name wins for RUN',
    rule: 'ref §Using ARG variables: ENV overrides an ARG of the same name; RUN uses v1.0.0 instead of the build arg v2.0.1',
    dockerfile: df('FROM ubuntu', 'ARG CONT_IMG_VER', 'ENV CONT_IMG_VER=v1.0.0', 'RUN echo $CONT_IMG_VER'),
    buildArgs: { CONT_IMG_VER: 'v2.0.1' },
    expect: { runEnv: { CONT_IMG_VER: 'v1.0.0' }, configEnv: { CONT_IMG_VER: 'v1.0.0' } },
  },
  {
    name: 'ENV ${ARG:-default} persists a build arg',
    rule: 'ref §Using ARG variables: ENV CONT_IMG_VER=${CONT_IMG_VER:-v1.0.0} with a build arg',
    dockerfile: df('FROM ubuntu', 'ARG CONT_IMG_VER', 'ENV CONT_IMG_VER=${CONT_IMG_VER:-v1.0.0}', 'RUN echo $CONT_IMG_VER'),
    buildArgs: { CONT_IMG_VER: 'v2.0.1' },
    expect: { configEnv: { CONT_IMG_VER: 'v2.0.1' }, runEnv: { CONT_IMG_VER: 'v2.0.1' } },
  },
  {
    name: 'ENV ${ARG:-default} falls back without a build arg',
    rule: 'ref §Using ARG variables: without --build-arg the value is v1.0.0, the default set by ENV',
    dockerfile: df('FROM ubuntu', 'ARG CONT_IMG_VER', 'ENV CONT_IMG_VER=${CONT_IMG_VER:-v1.0.0}'),
    expect: { configEnv: { CONT_IMG_VER: 'v1.0.0' } },
  },
  {
    name: 'one instruction expands every variable with the values from before it',
    rule: 'ref §Environment replacement: ENV abc=bye def=$abc gives def=hello; the next ENV ghi=$abc gives bye',
    dockerfile: df('FROM busybox', 'ENV abc=hello', 'ENV abc=bye def=$abc', 'ENV ghi=$abc'),
    expect: { configEnv: { abc: 'bye', def: 'hello', ghi: 'bye' } },
  },
  {
    name: 'ENV is stored in the image config',
    rule: 'ref §ENV: environment variables set using ENV persist when a container is run from the image',
    dockerfile: df('FROM busybox', 'ENV MY_CAT=fluffy'),
    expect: { config: { Env: [`PATH=${PATH}`, 'MY_CAT=fluffy'] } },
  },
  {
    name: 'ENV NAME VALUE (legacy form) sets one variable to the rest of the line',
    rule: 'ref §ENV Alternative syntax: ENV ONE TWO= THREE=world sets ONE to "TWO= THREE=world"',
    dockerfile: df('FROM busybox', 'ENV MY_VAR my-value', 'ENV ONE TWO= THREE=world'),
    expect: { configEnv: { MY_VAR: 'my-value', ONE: 'TWO= THREE=world', TWO: null, THREE: null } },
  },
  {
    name: 'ENV values take quotes and escaped spaces like a command line',
    rule: 'ref §ENV: ENV MY_NAME="John Doe" MY_DOG=Rex\\ The\\ Dog MY_CAT=fluffy',
    dockerfile: df('FROM busybox', 'ENV MY_NAME="John Doe" MY_DOG=Rex\\ The\\ Dog \\', '    MY_CAT=fluffy'),
    expect: { configEnv: { MY_NAME: 'John Doe', MY_DOG: 'Rex The Dog', MY_CAT: 'fluffy' } },
  },
  {
    name: 'the base image\'s ENV is inherited and seen by RUN',
    rule: 'ref §ENV: the value will be in the environment for all subsequent instructions in the build stage',
    dockerfile: df('FROM node', 'RUN npm ci'),
    images: { node: { Env: [`PATH=${PATH}`, 'NODE_VERSION=20.11.0'] } },
    expect: { runEnv: { NODE_VERSION: '20.11.0' }, configEnv: { NODE_VERSION: '20.11.0' } },
  },
  {
    name: 'a stage inherits the ENV of the stage it is based on',
    rule: 'ref §ENV: a stage inherits any environment variables set using ENV by its parent stage or any ancestor',
    dockerfile: df('FROM busybox AS base', 'ENV LOCAL_ENV=true', 'FROM base AS child', 'RUN echo $LOCAL_ENV'),
    expect: { runEnv: { LOCAL_ENV: 'true' }, configEnv: { LOCAL_ENV: 'true' } },
  },
  {
    name: 'an ARG declared after an inherited ENV overrides it for the build, not in the image',
    rule: 'ref §Using ARG variables ("from its point of definition"); BuildKit: ARG values are added to the build environment in order (kaniko#624 matches BuildKit)',
    dockerfile: df('FROM parent', 'ARG HELLO', 'RUN echo "HELLO=${HELLO}"'),
    buildArgs: { HELLO: 'child' },
    images: { parent: { Env: [`PATH=${PATH}`, 'HELLO=World'] } },
    expect: { runEnv: { HELLO: 'child' }, configEnv: { HELLO: 'World' } },
  },
  {
    name: 'an ARG without a value does not clear an ENV of the same name',
    rule: 'ref §Using ARG variables (ENV wins); BuildKit: an ARG with no value sets nothing (moby/buildkit#915)',
    dockerfile: df('FROM busybox', 'ENV MODE=prod', 'ARG MODE', 'RUN echo $MODE'),
    expect: { runEnv: { MODE: 'prod' }, runHistory: 'RUN |1 MODE=prod /bin/sh -c echo $MODE' },
  },
  {
    name: 'an ARG with a default after ENV of the same name wins for RUN only',
    rule: 'ref §Using ARG variables ("from its point of definition"); BuildKit: dispatchArg adds the value to the build environment',
    dockerfile: df('FROM busybox', 'ENV MODE=prod', 'ARG MODE=dev', 'RUN echo $MODE'),
    expect: { runEnv: { MODE: 'dev' }, configEnv: { MODE: 'prod' } },
  },
  {
    name: 'ENV replacing an inherited variable keeps its place in the config',
    rule: 'ref §ENV (a later value replaces an earlier one); BuildKit addEnv replaces in place',
    dockerfile: df('FROM base', 'ENV A=new'),
    images: { base: { Env: ['A=old', 'B=1', `PATH=${PATH}`] } },
    expect: { config: { Env: ['A=new', 'B=1', `PATH=${PATH}`] } },
  },
  {
    name: 'ENV names are expanded too',
    rule: 'ref §Environment replacement: ENV supports variables; BuildKit expands both key and value',
    dockerfile: df('FROM busybox', 'ARG K=NAME', 'ENV $K=v'),
    expect: { configEnv: { NAME: 'v' } },
  },
  {
    name: 'LABEL expands variables inside double quotes, not single quotes',
    rule: 'ref §LABEL: single quotes take the string as is without unpacking the variable\'s value',
    dockerfile: df('FROM busybox', 'ARG V=1.0', 'LABEL version="$V" raw=\'$V\' "com.example.vendor"="ACME Incorporated"'),
    expect: { config: { Env: [`PATH=${PATH}`], Labels: { version: '1.0', raw: '$V', 'com.example.vendor': 'ACME Incorporated' } } },
  },
  {
    name: 'an escaped variable stays literal',
    rule: 'ref §Environment replacement: COPY \\$FOO /quux copies $FOO',
    dockerfile: df('FROM busybox', 'ENV FOO=/bar', 'COPY \\$FOO /quux'),
    expect: { copy: { sources: ['$FOO'], dest: '/quux' } },
  },
  {
    name: 'WORKDIR and ADD destinations expand ENV',
    rule: 'ref §Environment replacement example: WORKDIR ${FOO} is /bar, ADD . $FOO adds to /bar',
    dockerfile: df('FROM busybox', 'ENV FOO=/bar', 'WORKDIR ${FOO}', 'ADD . $FOO'),
    expect: { config: { Env: [`PATH=${PATH}`, 'FOO=/bar'], WorkingDir: '/bar' }, copy: { sources: ['.'], dest: '/bar', destIsDir: false } },
  },
  {
    name: 'RUN words are left to the shell',
    rule: 'ref §Environment replacement: for RUN, CMD and ENTRYPOINT the substitution is handled by the command shell, not the builder',
    dockerfile: df('FROM busybox', 'ENV X=1', 'RUN echo $X ${X}'),
    expect: { argv: ['/bin/sh', '-c', 'echo $X ${X}'] },
  },
  {
    name: 'exec-form RUN is not expanded at all',
    rule: 'ref §Shell and exec form › Variable substitution: RUN [ "echo", "$HOME" ] won\'t handle variable substitution',
    dockerfile: df('FROM busybox', 'RUN [ "echo", "$HOME" ]'),
    expect: { argv: ['echo', '$HOME'] },
  },
  {
    name: 'CMD, ENTRYPOINT, HEALTHCHECK and SHELL keep their words',
    rule: 'ref §Environment replacement (they are not in the list of instructions that expand)',
    dockerfile: df('FROM busybox', 'ENV X=1', 'SHELL ["/bin/$X", "-c"]', 'ENTRYPOINT ["run-$X"]', 'CMD echo $X', 'HEALTHCHECK CMD check $X'),
    expect: {
      config: {
        Env: [`PATH=${PATH}`, 'X=1'],
        Shell: ['/bin/$X', '-c'],
        Entrypoint: ['run-$X'],
        Cmd: ['/bin/$X', '-c', 'echo $X'],
        Healthcheck: { Test: ['CMD-SHELL', 'check $X'] },
      },
    },
  },
  {
    name: 'USER, VOLUME, EXPOSE and STOPSIGNAL expand variables',
    rule: 'ref §Environment replacement: supported by USER, VOLUME, EXPOSE, STOPSIGNAL',
    dockerfile: df('FROM busybox', 'ARG U=app P=8080 S=SIGQUIT D=/data', 'USER $U', 'VOLUME $D', 'EXPOSE $P', 'STOPSIGNAL $S'),
    expect: { config: { Env: [`PATH=${PATH}`], User: 'app', Volumes: { '/data': {} }, ExposedPorts: { '8080/tcp': {} }, StopSignal: 'SIGQUIT' } },
  },
  {
    name: 'the ${var:-word}, ${var-word}, ${var:+word} and ${var+word} modifiers',
    rule: 'ref §Environment replacement: the supported bash modifiers',
    dockerfile: df('FROM busybox', 'ARG EMPTY= SET=v', 'ENV A=${EMPTY:-w} B=${EMPTY-w} C=${SET:+alt} D=${EMPTY+alt} E=${NOPE+alt}'),
    expect: { configEnv: { A: 'w', B: '', C: 'alt', D: 'alt', E: '' } },
  },
  {
    name: 'scratch starts with the default PATH',
    rule: 'BuildKit: dispatchStages makes sure PATH is always set (the default Linux PATH)',
    dockerfile: df('FROM scratch', 'RUN true'),
    expect: { runEnv: { PATH }, configEnv: { PATH } },
  },
  {
    name: 'a base image without PATH gets the default one',
    rule: 'BuildKit: dispatchStages adds PATH to the image config when the base has none',
    dockerfile: df('FROM nopath'),
    images: { nopath: { Env: ['A=1'] } },
    expect: { config: { Env: ['A=1', `PATH=${PATH}`] } },
  },
  {
    name: 'ENV PATH=$PATH:/x extends the inherited PATH',
    rule: 'ref §Environment replacement (ENV expands earlier variables, including inherited ones)',
    dockerfile: df('FROM busybox', 'ENV PATH=$PATH:/opt/bin'),
    expect: { configEnv: { PATH: `${PATH}:/opt/bin` } },
  },
  {
    name: 'COPY heredoc bodies expand variables, quoted delimiters do not',
    rule: 'ref §Here-Documents › Example: Creating inline files: the variable is expanded; quoting any part of EOT prevents it',
    dockerfile: df('FROM alpine', 'ARG FOO=bar', 'COPY <<-EOT /script.sh', '\techo "hello ${FOO}"', 'EOT', 'COPY <<-"EOT" /raw.sh', '\techo "hello ${FOO}"', 'EOT'),
    expect: { copy: { inline: [{ name: 'EOT', content: 'echo "hello ${FOO}"\n' }], dest: '/raw.sh' } },
  },
  {
    name: 'an expanded COPY heredoc keeps quotes and treats backslash as an escape',
    rule: 'ref §Here-Documents: regular here-doc expansion rules apply (POSIX 2.7.4); BuildKit testCopyHeredocSpecialSymbols',
    dockerfile: df('FROM scratch', 'ARG name=world', "COPY <<EOF /q", "Hello '${name}' \"${name}\" \\$ \\\\", 'EOF'),
    expect: { copy: { inline: [{ name: 'EOF', content: "Hello 'world' \"world\" $ \\\n" }] } },
  },
  {
    name: '<<- strips leading tabs of an expanded COPY heredoc before expansion',
    rule: 'ref §Here-Documents: regular tab stripping rules apply (<<-)',
    dockerfile: df('FROM alpine', 'ARG FOO=bar', 'COPY <<-EOT /script.sh', '\techo "hello ${FOO}"', 'EOT'),
    expect: { copy: { inline: [{ name: 'EOT', content: 'echo "hello bar"\n' }] } },
  },
  {
    name: 'a RUN heredoc is a script for the shell; the builder expands nothing in it',
    rule: 'ref §Here-Documents: if the command only contains a here-document, its contents is evaluated with the default shell',
    dockerfile: df('FROM debian', 'ARG name=world', 'RUN <<EOT', '  echo "Hello ${name}"', 'EOT'),
    expect: { argv: ['/bin/sh', '-c', '  echo "Hello ${name}"\n'] },
  },
  {
    name: 'a RUN heredoc with a command line goes to the shell with its bodies',
    rule: 'ref §Here-Documents: RUN <<EOT bash ... and several here-documents in one RUN',
    dockerfile: df('FROM alpine', 'RUN <<FILE1 cat > file1 && <<FILE2 cat > file2', 'I am', 'first', 'FILE1', 'I am', 'second', 'FILE2'),
    expect: { argv: ['/bin/sh', '-c', '<<FILE1 cat > file1 && <<FILE2 cat > file2\nI am\nfirst\nFILE1\nI am\nsecond\nFILE2'] },
  },
  {
    name: 'a #! RUN heredoc becomes an executable script run through the shell',
    rule: 'ref §Here-Documents: a shebang header can define the interpreter; BuildKit mounts it under /dev/pipes',
    dockerfile: df('FROM python:3.6', 'RUN <<EOT', '#!/usr/bin/env python', 'print("hello world")', 'EOT'),
    expect: { argv: ['/bin/sh', '-c', '/dev/pipes/EOT'] },
  },
  {
    name: 'SHELL changes how later shell forms run',
    rule: 'ref §SHELL: each SHELL overrides the previous ones and affects RUN, CMD and ENTRYPOINT',
    dockerfile: df('FROM busybox', 'SHELL ["/bin/bash", "-eo", "pipefail", "-c"]', 'RUN echo hello'),
    expect: { argv: ['/bin/bash', '-eo', 'pipefail', '-c', 'echo hello'], runHistory: 'RUN /bin/bash -eo pipefail -c echo hello' },
  },
  {
    name: 'an ENTRYPOINT resets a CMD inherited from the base image',
    rule: 'ref §Understand how CMD and ENTRYPOINT interact: if CMD is defined from the base image, setting ENTRYPOINT resets CMD to an empty value',
    dockerfile: df('FROM ubuntu', 'ENTRYPOINT ["top", "-b"]'),
    images: { ubuntu: { Env: [`PATH=${PATH}`], Cmd: ['/bin/bash'] } },
    expect: { config: { Env: [`PATH=${PATH}`], Cmd: null, Entrypoint: ['top', '-b'] } },
  },
  {
    name: 'a CMD set before ENTRYPOINT in the same stage is kept',
    rule: 'ref §Exec form ENTRYPOINT example: ENTRYPOINT ["top", "-b"] with CMD ["-c"]',
    dockerfile: df('FROM ubuntu', 'CMD ["-c"]', 'ENTRYPOINT ["top", "-b"]'),
    images: { ubuntu: { Env: [`PATH=${PATH}`], Cmd: ['/bin/bash'] } },
    expect: { config: { Env: [`PATH=${PATH}`], Cmd: ['-c'], Entrypoint: ['top', '-b'] } },
  },
  {
    name: 'shell-form ENTRYPOINT and CMD are wrapped in the shell',
    rule: 'ref §Understand how CMD and ENTRYPOINT interact (table: ENTRYPOINT exec_entry p1_entry is /bin/sh -c exec_entry p1_entry)',
    dockerfile: df('FROM ubuntu', 'ENTRYPOINT exec top -b', 'CMD exec_cmd p1_cmd'),
    expect: {
      config: { Env: [`PATH=${PATH}`], Entrypoint: ['/bin/sh', '-c', 'exec top -b'], Cmd: ['/bin/sh', '-c', 'exec_cmd p1_cmd'] },
      history: ['ENTRYPOINT ["/bin/sh" "-c" "exec top -b"]', 'CMD ["/bin/sh" "-c" "exec_cmd p1_cmd"]'],
    },
  },
  {
    name: 'EXPOSE records protocols and ranges',
    rule: 'ref §EXPOSE: the default is TCP; 80/udp; BuildKit expands START-END ranges',
    dockerfile: df('FROM busybox', 'EXPOSE 80/tcp 80/udp 8000-8002 53/UDP'),
    expect: {
      config: { Env: [`PATH=${PATH}`], ExposedPorts: { '80/tcp': {}, '80/udp': {}, '8000/tcp': {}, '8001/tcp': {}, '8002/tcp': {}, '53/udp': {} } },
      history: ['EXPOSE 53/UDP 80/tcp 80/udp 8000-8002'],
    },
  },
  {
    name: 'WORKDIR chains relative paths',
    rule: 'ref §WORKDIR: WORKDIR /a, WORKDIR b, WORKDIR c gives /a/b/c',
    dockerfile: df('FROM busybox', 'WORKDIR /a', 'WORKDIR b', 'WORKDIR c', 'RUN pwd'),
    expect: { config: { Env: [`PATH=${PATH}`], WorkingDir: '/a/b/c' }, history: ['WORKDIR /a', 'WORKDIR /a/b', 'WORKDIR /a/b/c', 'RUN /bin/sh -c pwd'] },
  },
  {
    name: 'WORKDIR sees ENV, and an unset variable is empty',
    rule: 'ref §WORKDIR: WORKDIR can resolve variables set with ENV (the reference prints $DIRNAME literally; BuildKit expands an unset variable to nothing)',
    dockerfile: df('FROM busybox', 'ENV DIRPATH=/path', 'WORKDIR $DIRPATH/$DIRNAME', 'RUN pwd'),
    expect: { config: { Env: [`PATH=${PATH}`, 'DIRPATH=/path'], WorkingDir: '/path' } },
  },
  {
    name: 'HEALTHCHECK with every option, and history in BuildKit\'s form',
    rule: 'ref §HEALTHCHECK: --interval, --timeout, --start-period, --start-interval, --retries',
    dockerfile: df('FROM busybox', 'HEALTHCHECK --interval=5m --timeout=3s --start-period=1m30s --start-interval=500ms --retries=4 \\', '  CMD curl -f http://localhost/ || exit 1'),
    expect: {
      config: {
        Env: [`PATH=${PATH}`],
        Healthcheck: { Test: ['CMD-SHELL', 'curl -f http://localhost/ || exit 1'], Interval: 300e9, Timeout: 3e9, StartPeriod: 90e9, StartInterval: 5e8, Retries: 4 },
      },
      history: ['HEALTHCHECK {Test:[CMD-SHELL curl -f http://localhost/ || exit 1] Interval:5m0s Timeout:3s StartPeriod:1m30s StartInterval:500ms Retries:4}'],
    },
  },
  {
    name: 'HEALTHCHECK NONE replaces the base image\'s check',
    rule: 'ref §HEALTHCHECK: HEALTHCHECK NONE disables any healthcheck inherited from the base image',
    dockerfile: df('FROM web', 'HEALTHCHECK NONE'),
    images: { web: { Env: [`PATH=${PATH}`], Healthcheck: { Test: ['CMD', 'check'] } } },
    expect: { config: { Env: [`PATH=${PATH}`], Healthcheck: { Test: ['NONE'] } } },
  },
  {
    name: 'ONBUILD stores the trigger, with its heredoc, and adds no history',
    rule: 'ref §ONBUILD: the trigger is added to the image metadata and doesn\'t otherwise affect the current build; BuildKit keeps heredoc bodies',
    dockerfile: df('FROM busybox', 'ONBUILD ADD . /app/src', 'ONBUILD RUN <<EOF', 'echo hi', 'EOF'),
    expect: { config: { Env: [`PATH=${PATH}`], OnBuild: ['ADD . /app/src', 'RUN <<EOF\necho hi\nEOF'] }, history: [] },
  },
  {
    name: 'ONBUILD triggers of the base image run first and are not passed on',
    rule: 'ref §ONBUILD: triggers run as if inserted right after FROM and are cleared from the final image',
    dockerfile: df('FROM builder', 'RUN make'),
    images: { builder: { Env: [`PATH=${PATH}`], OnBuild: ['WORKDIR /app/src', 'RUN /usr/local/bin/python-build --dir /app/src'] } },
    expect: { config: { Env: [`PATH=${PATH}`], WorkingDir: '/app/src', OnBuild: undefined }, history: ['WORKDIR /app/src', 'RUN /bin/sh -c /usr/local/bin/python-build --dir /app/src', 'RUN /bin/sh -c make'] },
  },
  {
    name: 'ONBUILD triggers of a stage run in a stage built on it',
    rule: 'ref §ONBUILD: the triggers run when the image is used as the base of another build; BuildKit applies a base stage\'s triggers too',
    dockerfile: df('FROM busybox AS base', 'ONBUILD ENV TRIGGERED=1', 'FROM base', 'RUN true'),
    expect: { configEnv: { TRIGGERED: '1' }, config: { Env: [`PATH=${PATH}`, 'TRIGGERED=1'], OnBuild: undefined } },
  },
  {
    name: 'MAINTAINER and STOPSIGNAL by number',
    rule: 'ref §MAINTAINER (sets the Author) and §STOPSIGNAL (a name like SIGKILL or a number like 9)',
    dockerfile: df('FROM busybox', 'MAINTAINER SvenDowideit@home.org.au', 'STOPSIGNAL 9'),
    expect: { config: { Env: [`PATH=${PATH}`], StopSignal: '9' }, history: ['MAINTAINER SvenDowideit@home.org.au', 'STOPSIGNAL 9'] },
  },
];

export const copyCases: DispatchCase[] = [
  {
    name: 'a trailing slash makes the destination a folder',
    rule: 'ref §COPY Destination: COPY test.txt /abs/ creates /abs/test.txt',
    dockerfile: df('FROM busybox', 'COPY test.txt /abs/'),
    expect: { copy: { dest: '/abs', destIsDir: true, sources: ['test.txt'] } },
  },
  {
    name: 'without a trailing slash the destination is the file itself',
    rule: 'ref §COPY Destination: trailing slashes are significant; COPY test.txt /abs creates a file at /abs',
    dockerfile: df('FROM busybox', 'COPY test.txt /abs'),
    expect: { copy: { dest: '/abs', destIsDir: false } },
  },
  {
    name: 'a relative destination is relative to WORKDIR',
    rule: 'ref §COPY Destination: WORKDIR /usr/src/app then COPY test.txt rel/ creates /usr/src/app/rel/test.txt',
    dockerfile: df('FROM busybox', 'WORKDIR /usr/src/app', 'COPY test.txt rel/'),
    expect: { copy: { dest: '/usr/src/app/rel', destIsDir: true } },
  },
  {
    name: 'the destination . is the working directory, as a folder',
    rule: 'ref §COPY Destination (relative to the working directory); BuildKit treats "." and "" as "./"',
    dockerfile: df('FROM busybox', 'WORKDIR /app', 'COPY package.json .'),
    expect: { copy: { dest: '/app', destIsDir: true } },
  },
  {
    name: 'a destination that expands to nothing is the working directory',
    rule: 'BuildKit: pathRelativeToWorkingDir treats an empty destination like "./"',
    dockerfile: df('FROM busybox', 'WORKDIR /app', 'COPY a $UNSET'),
    expect: { copy: { dest: '/app', destIsDir: true } },
  },
  {
    name: 'a relative destination may climb out of WORKDIR',
    rule: 'ref §COPY Destination (relative to the working directory)',
    dockerfile: df('FROM busybox', 'WORKDIR /srv/app', 'COPY a ../shared/'),
    expect: { copy: { dest: '/srv/shared', destIsDir: true } },
  },
  {
    name: 'several sources keep the destination as written',
    rule: 'ref §COPY Source: several sources need a folder destination ending in /; BuildKit does not enforce it (moby/buildkit#1853) and neither do we',
    dockerfile: df('FROM busybox', 'COPY file1.txt file2.txt /usr/src/things/'),
    expect: { copy: { sources: ['file1.txt', 'file2.txt'], dest: '/usr/src/things', destIsDir: true } },
  },
  {
    name: 'sources and --chown expand variables; --chmod expands too',
    rule: 'ref §Environment replacement (COPY expands); ref §COPY --chmod: ARG MODE=440 then COPY --chmod=$MODE . .',
    dockerfile: df('FROM busybox', 'ARG SRC=dist MODE=440 OWNER=55:mygroup', 'COPY --chown=$OWNER --chmod=$MODE $SRC/ /www/'),
    expect: { copy: { sources: ['dist/'], chown: '55:mygroup', chmod: '440', dest: '/www' } },
  },
  {
    name: 'symbolic --chmod is accepted',
    rule: 'ref §COPY --chmod: symbolic notation such as +x, g=u, u=rwX,go=rX',
    dockerfile: df('FROM busybox', 'COPY --chmod=u=rwX,go=rX . /app/'),
    expect: { copy: { chmod: 'u=rwX,go=rX' } },
  },
  {
    name: '--from is taken as written; --exclude is not expanded',
    rule: 'BuildKit: --from is never expanded (instructions.ts refuses variables) and --exclude patterns are not expanded (moby/buildkit#6072)',
    dockerfile: df('FROM busybox AS build', 'FROM busybox', 'ARG X=y', 'COPY --from=build --exclude=*.$X --link /out/ /app/'),
    expect: { copy: { from: 'build', excludes: ['*.$X'], link: true, history: 'COPY --from=build --link /out/ /app/' } },
  },
  {
    name: 'the JSON form allows spaces in paths',
    rule: 'ref §COPY: the latter form (JSON) is required for paths containing whitespace',
    dockerfile: df('FROM busybox', 'COPY ["my file.txt", "/dest dir/"]'),
    expect: { copy: { sources: ['my file.txt'], dest: '/dest dir', destIsDir: true } },
  },
  {
    name: 'COPY <<EOF writes an inline file named after the destination',
    rule: 'ref §Here-Documents › Creating inline files: COPY <<EOF greeting.txt creates greeting.txt containing hello world',
    dockerfile: df('FROM alpine', 'COPY <<EOF greeting.txt', 'hello world', 'EOF'),
    expect: { copy: { sources: ['<<EOF'], dest: '/greeting.txt', destIsDir: false, inline: [{ name: 'EOF', content: 'hello world\n' }] } },
  },
  {
    name: 'several heredocs into a folder',
    rule: 'ref §Here-Documents; BuildKit testCopyHeredoc: COPY <<EOF <<EOF2 double/ gives double/EOF and double/EOF2',
    dockerfile: df('FROM busybox', 'WORKDIR /dest', 'COPY <<EOF <<EOF2 double/', 'first file', 'EOF', 'second file', 'EOF2'),
    expect: { copy: { dest: '/dest/double', destIsDir: true, inline: [{ name: 'EOF', content: 'first file\n' }, { name: 'EOF2', content: 'second file\n' }] } },
  },
  {
    name: 'ADD --checksum and --unpack are recorded',
    rule: 'ref §ADD --checksum (sha256:<hash> for HTTP sources) and §ADD --unpack',
    dockerfile: df('FROM alpine', 'ARG SUM=sha256:24454f830cdb571e2c4ad15481119c43b3cafd48dd869a9b2945d1036d1dc68d', 'ADD --unpack=true --checksum=$SUM https://mirrors.edge.kernel.org/pub/linux/kernel/Historic/linux-0.01.tar.gz /'),
    expect: { copy: { kind: 'add', checksum: 'sha256:24454f830cdb571e2c4ad15481119c43b3cafd48dd869a9b2945d1036d1dc68d', unpack: true, dest: '/', destIsDir: true } },
  },
  {
    name: 'ADD --keep-git-dir is recorded',
    rule: 'ref §ADD --keep-git-dir: preserve the .git directory',
    dockerfile: df('FROM alpine', 'ADD --keep-git-dir=true https://github.com/moby/buildkit.git#v0.10.1 /buildkit'),
    expect: { copy: { kind: 'add', keepGitDir: true, dest: '/buildkit', destIsDir: false } },
  },
  {
    name: '--parents is recorded',
    rule: 'ref §COPY --parents: preserves parent directories for src entries',
    dockerfile: df('FROM scratch', 'COPY --parents ./x/a.txt ./y/a.txt /parents/'),
    expect: { copy: { parents: true, sources: ['./x/a.txt', './y/a.txt'], dest: '/parents', destIsDir: true } },
  },
  {
    name: 'COPY cannot fetch a URL',
    rule: 'ref §ADD (URLs are an ADD feature); BuildKit: "source can\'t be a URL for COPY"',
    dockerfile: df('FROM busybox', 'COPY https://example.com/a /a'),
    expect: { error: { message: /source can't be a URL for COPY/, line: 2 } },
  },
  {
    name: 'a --chmod that is not octal or symbolic is refused',
    rule: 'ref §COPY --chmod; BuildKit: "invalid chmod parameter ... it should be octal string and between 0 and 07777"',
    dockerfile: df('FROM busybox', 'ARG MODE=999', 'COPY --chmod=$MODE a /a'),
    expect: { error: { message: /invalid chmod parameter: '999'/, line: 3 } },
  },
];
