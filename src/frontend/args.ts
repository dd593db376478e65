/** Build arguments Docker defines without an ARG instruction. */
import { platformToString } from '../image/platform.ts';
import type { Platform } from '../image/types.ts';

/**
 * Usable by RUN when passed with --build-arg, never recorded in history or config and not part of
 * the cache key, unless the Dockerfile declares them with ARG (then they are ordinary ARGs).
 */
export const PROXY_ARGS = new Set([
  'HTTP_PROXY', 'http_proxy', 'HTTPS_PROXY', 'https_proxy', 'FTP_PROXY', 'ftp_proxy', 'NO_PROXY', 'no_proxy', 'ALL_PROXY', 'all_proxy',
]);

export const PLATFORM_ARG_NAMES = [
  'BUILDPLATFORM', 'BUILDOS', 'BUILDARCH', 'BUILDVARIANT', 'TARGETPLATFORM', 'TARGETOS', 'TARGETARCH', 'TARGETVARIANT',
] as const;

/** Build args that configure the builder itself (BuildKit's `BUILDKIT_*`, SOURCE_DATE_EPOCH), never "unused". */
export function isBuilderArg(name: string): boolean {
  return name.startsWith('BUILDKIT_') || name === 'SOURCE_DATE_EPOCH';
}


/** The automatic platform ARGs for a build on `build` producing `target`. */
export function platformArgs(build: Platform, target: Platform): Map<string, string> {
  return new Map<string, string>([
    ['BUILDPLATFORM', platformToString(build)],
    ['BUILDOS', build.os],
    ['BUILDARCH', build.architecture],
    ['BUILDVARIANT', build.variant ?? ''],
    ['TARGETPLATFORM', platformToString(target)],
    ['TARGETOS', target.os],
    ['TARGETARCH', target.architecture],
    ['TARGETVARIANT', target.variant ?? ''],
  ]);
}

/**
 * The proxy variables RUN gets from undeclared proxy build args. As in BuildKit, each kind is
 * matched case-insensitively (the last name in sorted order wins) and set under both spellings.
 */
export function proxyEnv(buildArgs: ReadonlyMap<string, string>): Map<string, string> {
  const out = new Map<string, string>();
  const keys = [...buildArgs.keys()].sort();
  for (const kind of ['HTTP_PROXY', 'HTTPS_PROXY', 'FTP_PROXY', 'NO_PROXY', 'ALL_PROXY']) {
    let value: string | undefined;
    for (const k of keys) if (k.toUpperCase() === kind) value = buildArgs.get(k);
    if (value === undefined || value === '') continue;
    out.set(kind, value);
    out.set(kind.toLowerCase(), value);
  }
  return out;
}
