/**
 * `WWW-Authenticate` parsed per RFC 9110 §11.6.1: one header may hold several challenges, commas
 * separate both challenges and parameters, values are tokens or quoted strings with `\` escapes,
 * and a scheme may carry a token68 instead of parameters. Registries send all of these
 * (`Bearer realm="…",service="…",scope="repository:a:pull,push"` has a comma inside quotes).
 */

export interface Challenge {
  /** Lower-cased scheme: `bearer`, `basic`, ... */
  scheme: string;
  /** Parameters with lower-cased names. */
  params: Record<string, string>;
  token68?: string;
}

const TCHAR = /[!#$%&'*+\-.^_`|~0-9A-Za-z]/;
const TOKEN68_CHAR = /[A-Za-z0-9\-._~+/]/;

export function parseChallenges(header: string | null | undefined): Challenge[] {
  if (!header) return [];
  const s = header;
  let i = 0;
  const out: Challenge[] = [];
  const skipWs = () => {
    while (i < s.length && (s[i] === ' ' || s[i] === '\t')) i++;
  };
  const skipSeparators = () => {
    while (i < s.length && (s[i] === ' ' || s[i] === '\t' || s[i] === ',')) i++;
  };
  const readToken = (): string => {
    const start = i;
    while (i < s.length && TCHAR.test(s[i]!)) i++;
    return s.slice(start, i);
  };
  const readQuoted = (): string => {
    i++; // opening quote
    let v = '';
    while (i < s.length && s[i] !== '"') {
      if (s[i] === '\\' && i + 1 < s.length) i++;
      v += s[i++];
    }
    i++; // closing quote
    return v;
  };
  /** At `i`: is this `name = value` (a parameter) rather than the next challenge's scheme? */
  const looksLikeParam = (): boolean => {
    let j = i;
    while (j < s.length && TCHAR.test(s[j]!)) j++;
    if (j === i) return false;
    while (j < s.length && (s[j] === ' ' || s[j] === '\t')) j++;
    return s[j] === '=';
  };
  /** At `i`: a token68 (`abc+/==`) ends at a comma or the end, and never continues with a value. */
  const readToken68 = (): string | undefined => {
    let j = i;
    while (j < s.length && TOKEN68_CHAR.test(s[j]!)) j++;
    if (j === i) return undefined;
    while (j < s.length && s[j] === '=') j++;
    let k = j;
    while (k < s.length && (s[k] === ' ' || s[k] === '\t')) k++;
    if (k < s.length && s[k] !== ',') return undefined;
    const value = s.slice(i, j);
    // `name=value` without spaces also matches token68 shape; a parameter has a value after its '='.
    if (/^[^=]+=[^=]/.test(value)) return undefined;
    i = j;
    return value;
  };

  while (i < s.length) {
    skipSeparators();
    const scheme = readToken();
    if (!scheme) {
      // Not a token: skip one character so a malformed header cannot loop forever.
      if (i < s.length) i++;
      continue;
    }
    const challenge: Challenge = { scheme: scheme.toLowerCase(), params: {} };
    out.push(challenge);
    skipWs();
    if (i >= s.length) break;
    if (s[i] !== ',') {
      const t68 = readToken68();
      if (t68 !== undefined) {
        challenge.token68 = t68;
        continue;
      }
    }
    // Parameters, until something that is not `name=value` (the next challenge's scheme).
    for (;;) {
      skipSeparators();
      if (i >= s.length || !looksLikeParam()) break;
      const name = readToken().toLowerCase();
      skipWs();
      i++; // '='
      skipWs();
      const value = s[i] === '"' ? readQuoted() : readToken();
      if (!(name in challenge.params)) challenge.params[name] = value;
    }
  }
  return out;
}

/** The challenge we can answer, preferring Bearer (it scopes access) over Basic. */
export function pickChallenge(challenges: Challenge[]): Challenge | undefined {
  return challenges.find((c) => c.scheme === 'bearer') ?? challenges.find((c) => c.scheme === 'basic');
}
