/**
 * Image references (`[domain/]path[:tag][@digest]`), parsed exactly as distribution/reference does,
 * because users type Docker's spelling and expect Docker's meaning: `busybox` is
 * `docker.io/library/busybox:latest`, `localhost:5000/app` names a registry, `Foo/bar` names a
 * registry too (Docker Hub has no upper-case namespaces).
 *
 * Two layers: the Go-compatible primitives (`parse`, `parseNormalizedNamed`, `withTag`, ...), kept
 * faithful so the conformance vectors hold, and `parseReference`, the one the rest of lading calls,
 * which normalises and adds the implicit `:latest`.
 */
import { ERROR_CODES, LadingError } from '../errors.ts';

// ---- grammar (distribution/reference regexp.go, written out for JavaScript) ----

const ALPHANUMERIC = '[a-z0-9]+';
const SEPARATOR = '(?:[._]|__|[-]+)';
const DOMAIN_NAME_COMPONENT = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const DOMAIN_NAME = `${DOMAIN_NAME_COMPONENT}(?:\\.${DOMAIN_NAME_COMPONENT})*`;
const IPV6_ADDRESS = '\\[(?:[a-fA-F0-9:]+)\\]';
const HOST = `(?:${DOMAIN_NAME}|${IPV6_ADDRESS})`;
const DOMAIN_AND_PORT = `${HOST}(?::[0-9]+)?`;
const TAG = '[\\w][\\w.-]{0,127}';
const DIGEST = '[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*[:][0-9a-fA-F]{32,}';
const PATH_COMPONENT = `${ALPHANUMERIC}(?:${SEPARATOR}${ALPHANUMERIC})*`;
const REMOTE_NAME = `${PATH_COMPONENT}(?:/${PATH_COMPONENT})*`;
const NAME = `(?:${DOMAIN_AND_PORT}/)?${REMOTE_NAME}`;

export const DOMAIN_RE = new RegExp(`^${DOMAIN_AND_PORT}$`);
export const TAG_RE = new RegExp(`^${TAG}$`);
export const DIGEST_RE = new RegExp(`^${DIGEST}$`);
/** 64 lower-case hex characters: an image ID, never a repository name. */
export const IDENTIFIER_RE = /^([a-f0-9]{64})$/;
/** Groups: domain (may be undefined), path. */
export const NAME_RE = new RegExp(`^(?:(${DOMAIN_AND_PORT})/)?(${REMOTE_NAME})$`);
/** Groups: name, tag, digest. */
export const REFERENCE_RE = new RegExp(`^(${NAME})(?::(${TAG}))?(?:@(${DIGEST}))?$`);

/** The longest repository path distribution accepts. */
export const NAME_MAX_LENGTH = 255;
export const DEFAULT_DOMAIN = 'docker.io';
const LEGACY_DEFAULT_DOMAIN = 'index.docker.io';
const OFFICIAL_REPO_PREFIX = 'library/';
export const DEFAULT_TAG = 'latest';

/** Which rule a reference broke; the names are distribution/reference's, so scripts can match them. */
export type ReferenceErrorReason =
  | 'ErrReferenceInvalidFormat'
  | 'ErrTagInvalidFormat'
  | 'ErrDigestInvalidFormat'
  | 'ErrNameContainsUppercase'
  | 'ErrNameEmpty'
  | 'ErrNameTooLong'
  | 'ErrNameNotCanonical'
  | 'digest.ErrDigestInvalidLength'
  | 'digest.ErrDigestUnsupported'
  | 'digest.ErrDigestInvalidFormat';

const REASON_TEXT: Record<ReferenceErrorReason, string> = {
  ErrReferenceInvalidFormat: 'invalid reference format',
  ErrTagInvalidFormat: 'invalid tag format',
  ErrDigestInvalidFormat: 'invalid digest format',
  ErrNameContainsUppercase: 'repository name must be lowercase',
  ErrNameEmpty: 'repository name must have at least one component',
  ErrNameTooLong: `repository name must not be more than ${NAME_MAX_LENGTH} characters`,
  ErrNameNotCanonical: 'repository name must be canonical',
  'digest.ErrDigestInvalidLength': 'invalid checksum digest length',
  'digest.ErrDigestUnsupported': 'unsupported digest algorithm',
  'digest.ErrDigestInvalidFormat': 'invalid checksum digest format',
};

function referenceError(reason: ReferenceErrorReason, input: string, extra?: string): LadingError {
  const shown = input.length > 300 ? `${input.slice(0, 300)}...` : input;
  return new LadingError(ERROR_CODES.REFERENCE, `"${shown}": ${extra ?? REASON_TEXT[reason]}`, {
    details: { reason },
    hint: 'an image reference is [registry[:port]/]name[:tag][@sha256:digest], with a lower-case name, e.g. ghcr.io/acme/app:1.2',
  });
}

// ---- digests (go-digest's rules: only sha256 is registered by default) ----

const DIGEST_HEX_LENGTH: Record<string, number> = { sha256: 64 };

function digestProblem(value: string): ReferenceErrorReason | undefined {
  const i = value.indexOf(':');
  if (i <= 0 || i + 1 === value.length) return 'digest.ErrDigestInvalidFormat';
  const algorithm = value.slice(0, i);
  const encoded = value.slice(i + 1);
  const length = DIGEST_HEX_LENGTH[algorithm];
  if (length === undefined) return DIGEST_RE.test(value) ? 'digest.ErrDigestUnsupported' : 'digest.ErrDigestInvalidFormat';
  if (encoded.length !== length) return 'digest.ErrDigestInvalidLength';
  if (!/^[a-f0-9]+$/.test(encoded)) return 'digest.ErrDigestInvalidFormat';
  return undefined;
}

// ---- the reference value ----

/**
 * A parsed reference. `domain` is empty for a name without one (only the un-normalised
 * primitives produce that); everything `parseReference` returns has a domain.
 */
export class Reference {
  readonly domain: string;
  readonly path: string;
  readonly tag?: string;
  readonly digest?: string;

  constructor(domain: string, path: string, tag?: string, digest?: string) {
    this.domain = domain;
    this.path = path;
    if (tag !== undefined) this.tag = tag;
    if (digest !== undefined) this.digest = digest;
  }

  /** `domain/path` (or `path` alone without a domain). */
  get name(): string {
    return this.domain ? `${this.domain}/${this.path}` : this.path;
  }

  /** The registry host (`docker.io`, `ghcr.io`, `localhost:5000`). */
  get registry(): string {
    return this.domain;
  }

  /** The repository within the registry (`library/busybox`). */
  get repository(): string {
    return this.path;
  }

  /** What to ask the registry's manifest endpoint for: the digest when pinned, else the tag. */
  get identifier(): string {
    return this.digest ?? this.tag ?? DEFAULT_TAG;
  }

  /** The full form: `docker.io/library/busybox:latest@sha256:...`. */
  toString(): string {
    return `${this.name}${this.tag !== undefined ? `:${this.tag}` : ''}${this.digest !== undefined ? `@${this.digest}` : ''}`;
  }

  /** The form people type: `busybox:latest`, `acme/app`, `ghcr.io/acme/app:1`. */
  familiar(): string {
    return familiarString(this);
  }

  withTag(tag: string): Reference {
    return withTag(this, tag);
  }

  withDigest(digest: string): Reference {
    return withDigest(this, digest);
  }

  toJSON(): string {
    return this.toString();
  }
}

/** What the rest of lading calls a reference: normalised, always with a registry. */
export type ImageReference = Reference;

// ---- distribution/reference primitives ----

/** `Parse`: strict grammar, no normalisation. */
export function parse(s: string): Reference {
  const m = REFERENCE_RE.exec(s);
  if (!m) {
    if (s === '') throw referenceError('ErrNameEmpty', s);
    if (REFERENCE_RE.test(s.toLowerCase())) throw referenceError('ErrNameContainsUppercase', s);
    throw referenceError('ErrReferenceInvalidFormat', s);
  }
  const [, name, tag, digest] = m;
  const nm = NAME_RE.exec(name!);
  const domain = nm?.[1] ?? '';
  const path = nm ? nm[2]! : name!;
  if (path.length > NAME_MAX_LENGTH) throw referenceError('ErrNameTooLong', s);
  if (digest !== undefined) {
    const problem = digestProblem(digest);
    if (problem) throw referenceError(problem, s);
  }
  return new Reference(domain, path, tag, digest);
}

/** `WithName`: a name alone, no tag or digest allowed. */
export function withName(name: string): Reference {
  const m = NAME_RE.exec(name);
  if (!m) throw referenceError('ErrReferenceInvalidFormat', name);
  if (m[2]!.length > NAME_MAX_LENGTH) throw referenceError('ErrNameTooLong', name);
  return new Reference(m[1] ?? '', m[2]!);
}

/** `WithTag`: keeps an existing digest. */
export function withTag(ref: Reference, tag: string): Reference {
  if (!TAG_RE.test(tag)) throw referenceError('ErrTagInvalidFormat', tag);
  return new Reference(ref.domain, ref.path, tag, ref.digest);
}

/** `WithDigest`: checks the digest's shape only, as the Go function does; keeps an existing tag. */
export function withDigest(ref: Reference, digest: string): Reference {
  if (!DIGEST_RE.test(digest)) throw referenceError('ErrDigestInvalidFormat', digest);
  return new Reference(ref.domain, ref.path, ref.tag, digest);
}

/** Split Docker's way: the first component is a domain only if it looks like one. */
function splitDockerDomain(name: string): [domain: string, remainder: string] {
  const slash = name.indexOf('/');
  if (slash === -1) return [DEFAULT_DOMAIN, OFFICIAL_REPO_PREFIX + name];
  const first = name.slice(0, slash);
  const rest = name.slice(slash + 1);
  let domain: string;
  let remainder: string;
  if (first === 'localhost' || /[.:]/.test(first) || first.toLowerCase() !== first) {
    [domain, remainder] = [first, rest];
  } else {
    [domain, remainder] = [DEFAULT_DOMAIN, name];
  }
  if (domain === LEGACY_DEFAULT_DOMAIN) domain = DEFAULT_DOMAIN;
  if (domain === DEFAULT_DOMAIN && !remainder.includes('/')) remainder = OFFICIAL_REPO_PREFIX + remainder;
  return [domain, remainder];
}

/** `ParseNormalizedNamed`: Docker's reading of what a user typed, without adding a tag. */
export function parseNormalizedNamed(s: string): Reference {
  if (IDENTIFIER_RE.test(s)) {
    throw referenceError('ErrReferenceInvalidFormat', s, `invalid repository name (${s}), cannot specify 64-byte hexadecimal strings`);
  }
  const [domain, remainder] = splitDockerDomain(s);
  const tagSep = remainder.indexOf(':');
  const remote = tagSep > -1 ? remainder.slice(0, tagSep) : remainder;
  if (remote.toLowerCase() !== remote) {
    throw referenceError('ErrNameContainsUppercase', s, `invalid reference format: repository name (${remote}) must be lowercase`);
  }
  return parse(`${domain}/${remainder}`);
}

/** `ParseNamed`: accepts only names already in canonical (fully qualified) form. */
export function parseNamed(s: string): Reference {
  const ref = parseNormalizedNamed(s);
  if (ref.toString() !== s) throw referenceError('ErrNameNotCanonical', s);
  return ref;
}

/** `ParseDockerRef`: normalised, `:latest` added, and the tag dropped when a digest pins the image. */
export function parseDockerRef(s: string): Reference {
  const ref = parseNormalizedNamed(s);
  if (ref.digest !== undefined) return new Reference(ref.domain, ref.path, undefined, ref.digest);
  return ref.tag === undefined ? new Reference(ref.domain, ref.path, DEFAULT_TAG) : ref;
}

/** A digest on its own (what `ParseAnyReference` gives for an image ID). */
export class DigestReference {
  constructor(readonly digest: string) {}
  toString(): string {
    return this.digest;
  }
}

/** `ParseAnyReference`: an image ID or bare digest, else a normalised name. */
export function parseAnyReference(s: string): Reference | DigestReference {
  if (IDENTIFIER_RE.test(s)) return new DigestReference(`sha256:${s}`);
  if (digestProblem(s) === undefined) return new DigestReference(s);
  return parseNormalizedNamed(s);
}

/** `FamiliarName`: the name as Docker shows it (no `docker.io/`, no `library/` for official images). */
export function familiarName(ref: Reference): string {
  if (ref.domain !== DEFAULT_DOMAIN) return ref.name;
  if (ref.path.startsWith(OFFICIAL_REPO_PREFIX)) {
    const rest = ref.path.slice(OFFICIAL_REPO_PREFIX.length);
    if (!rest.includes('/')) return rest;
  }
  return ref.path;
}

/** `FamiliarString`: the familiar name with tag and digest. */
export function familiarString(ref: Reference | DigestReference): string {
  if (ref instanceof DigestReference) return ref.digest;
  return `${familiarName(ref)}${ref.tag !== undefined ? `:${ref.tag}` : ''}${ref.digest !== undefined ? `@${ref.digest}` : ''}`;
}

/** `FamiliarMatch`: Go's path.Match against the familiar name, then the familiar string. */
export function familiarMatch(pattern: string, ref: Reference | DigestReference): boolean {
  const name = ref instanceof DigestReference ? ref.digest : familiarName(ref);
  return pathMatch(pattern, name) || pathMatch(pattern, familiarString(ref));
}

/**
 * Go's path.Match: `*` and `?` never cross `/`, `[...]` classes with ranges and `^`, `\` escapes.
 * A malformed pattern is an error even when an earlier part already failed to match (as in Go).
 */
export function pathMatch(pattern: string, name: string): boolean {
  const re = globToRegExp(pattern);
  return re.test(name);
}

function globToRegExp(pattern: string): RegExp {
  const bad = (): never => {
    throw new LadingError(ERROR_CODES.REFERENCE, `syntax error in pattern "${pattern}"`, { details: { reason: 'ErrBadPattern' } });
  };
  const escapeChar = (c: string): string => c.replace(/[\\^$.*+?()[\]{}|/-]/g, '\\$&');
  let out = '^';
  let i = 0;
  for (; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '*') out += '[^/]*';
    else if (c === '?') out += '[^/]';
    else if (c === '\\') {
      if (i + 1 >= pattern.length) bad();
      out += escapeChar(pattern[++i]!);
    } else if (c === '[') {
      i++;
      let cls = '[';
      if (pattern[i] === '^') {
        cls += '^';
        i++;
      }
      let ranges = 0;
      for (;;) {
        if (i >= pattern.length) bad();
        if (pattern[i] === ']' && ranges > 0) break;
        const lo = classChar();
        let hi = lo;
        if (pattern[i] === '-') {
          i++;
          hi = classChar();
          if (hi < lo) bad();
        }
        cls += lo === hi ? escapeChar(lo) : `${escapeChar(lo)}-${escapeChar(hi)}`;
        ranges++;
      }
      out += `${cls}]`;
    } else out += escapeChar(c);
  }
  return new RegExp(`${out}$`);

  function classChar(): string {
    const ch = pattern[i];
    if (ch === undefined || ch === '-' || ch === ']') bad();
    if (ch === '\\') {
      i++;
      if (i >= pattern.length) bad();
    }
    return pattern[i++]!;
  }
}

// ---- what lading calls ----

export interface ParseReferenceOptions {
  /** Tag to add when the reference has neither tag nor digest (default `latest`; `false` for none). */
  defaultTag?: string | false;
}

/**
 * Parse and normalise a reference the way `docker pull` reads it. Tag and digest are both kept
 * when both are given (the digest decides what is fetched; the tag is where a push writes).
 */
export function parseReference(s: string, options: ParseReferenceOptions = {}): ImageReference {
  const ref = parseNormalizedNamed(s);
  const defaultTag = options.defaultTag ?? DEFAULT_TAG;
  if (ref.tag === undefined && ref.digest === undefined && defaultTag !== false) return withTag(ref, defaultTag);
  return ref;
}

/** The host to send API requests to: Docker Hub's API lives on another name than its references. */
export function registryApiHost(registry: string): string {
  return registry === DEFAULT_DOMAIN || registry === LEGACY_DEFAULT_DOMAIN ? 'registry-1.docker.io' : registry;
}

/** One spelling per registry for comparing hosts (Docker Hub has several). */
export function canonicalRegistry(host: string): string {
  const h = host.toLowerCase().replace(/^[a-z]+:\/\//, '').replace(/\/.*$/, '');
  if (h === LEGACY_DEFAULT_DOMAIN || h === 'registry-1.docker.io' || h === 'registry.hub.docker.com') return DEFAULT_DOMAIN;
  return h;
}
