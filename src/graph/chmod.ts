/**
 * `COPY --chmod` / `ADD --chmod` values: octal (`755`, `0644`) or symbolic (`u+x,g-w`, `go=rX`,
 * `g=u`), the chmod(1) grammar BuildKit accepts since Dockerfile 1.14. The front end checks a
 * value as soon as it is expanded; the engine applies it to every copied file and folder.
 */

/** How a mode changes: a function of (current mode, is it a directory). */
export type ModeChange = (mode: number, isDir: boolean) => number;

export class ChmodError extends Error {}

/**
 * Parse a `--chmod` value. Throws ChmodError with BuildKit's wording: numbers that are not octal
 * or exceed 07777 get the "octal string" message, other malformed text says what is wrong.
 */
export function parseChmod(spec: string): ModeChange {
  const octalMessage = `invalid chmod parameter: '${spec}'. it should be octal string and between 0 and 07777`;
  if (/^[0-9]+$/.test(spec)) {
    if (!/^[0-7]+$/.test(spec)) throw new ChmodError(octalMessage);
    const m = Number.parseInt(spec, 8);
    if (m > 0o7777) throw new ChmodError(octalMessage);
    return () => m;
  }
  const clauses = spec.split(',').map((clause) => parseClause(clause, spec));
  return (mode, isDir) => {
    let out = mode & 0o7777;
    for (const clause of clauses) out = applyClause(clause, out, isDir);
    return out;
  };
}

interface Action {
  op: '+' | '-' | '=';
  perms: string;
  /** `g=u`: copy another class's bits instead of naming permissions. */
  copy?: 'u' | 'g' | 'o';
}

interface Clause {
  who: string;
  actions: Action[];
}

function parseClause(clause: string, spec: string): Clause {
  const m = /^([ugoa]*)((?:[+=-](?:[ugo]|[rwxXst]*))+)$/.exec(clause);
  if (!m) throw new ChmodError(`invalid chmod parameter: '${spec}': "${clause}" is not a mode clause such as u+x, go-w or a=rX`);
  const actions: Action[] = [];
  for (const a of m[2]!.matchAll(/([+=-])([ugo]|[rwxXst]*)/g)) {
    const op = a[1] as Action['op'];
    const rest = a[2]!;
    if (rest === 'u' || rest === 'g' || rest === 'o') actions.push({ op, perms: '', copy: rest });
    else actions.push({ op, perms: rest });
  }
  return { who: m[1] === '' || m[1]!.includes('a') ? 'ugo' : m[1]!, actions };
}

const SHIFT: Record<string, number> = { u: 6, g: 3, o: 0 };

function applyClause(clause: Clause, start: number, isDir: boolean): number {
  let mode = start;
  for (const action of clause.actions) {
    let bits = 0;
    let mask = 0;
    for (const c of clause.who) {
      const shift = SHIFT[c]!;
      mask |= 0o7 << shift;
      if (c === 'u') mask |= 0o4000;
      if (c === 'g') mask |= 0o2000;
      if (c === 'o') mask |= 0o1000;
      if (action.copy !== undefined) {
        bits |= ((mode >> SHIFT[action.copy]!) & 0o7) << shift;
        continue;
      }
      for (const p of action.perms) {
        if (p === 'r') bits |= 4 << shift;
        else if (p === 'w') bits |= 2 << shift;
        else if (p === 'x' || (p === 'X' && (isDir || (mode & 0o111) !== 0))) bits |= 1 << shift;
        else if (p === 's' && c === 'u') bits |= 0o4000;
        else if (p === 's' && c === 'g') bits |= 0o2000;
        else if (p === 't' && c === 'o') bits |= 0o1000;
      }
    }
    if (action.op === '+') mode |= bits;
    else if (action.op === '-') mode &= ~bits;
    else mode = (mode & ~mask) | bits;
  }
  return mode & 0o7777;
}
