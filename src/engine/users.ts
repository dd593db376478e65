/**
 * `user[:group]` → numeric ids, through the image's own /etc/passwd and /etc/group, the way
 * Docker resolves `--chown` and `USER` (never the host's files).
 */
import { ERROR_CODES, LadingError } from '../errors.ts';

export interface Ids {
  uid: number;
  gid: number;
}

function table(content: string | undefined): string[][] {
  if (!content) return [];
  return content
    .split('\n')
    .filter((l) => l.trim() !== '' && !l.startsWith('#'))
    .map((l) => l.split(':'));
}

const numeric = (s: string): boolean => /^\d+$/.test(s);

/**
 * Resolve `spec` (name or id, optionally `:group`). A user named alone takes its primary group
 * from passwd (what BuildKit and buildah do). A bare uid alone takes, for `--chown`, the same
 * number as its gid (Docker's documented rule for COPY and ADD); for `USER`, its primary group
 * when passwd lists it, else 0, as the runtime does.
 */
export function resolveIds(spec: string, passwd: string | undefined, group: string | undefined, mode: 'chown' | 'user' = 'chown'): Ids {
  const [userPart = '', groupPart] = spec.split(':', 2);
  if (userPart === '') throw new LadingError(ERROR_CODES.DOCKERFILE_INVALID, `invalid user "${spec}"`, { hint: 'write USER[:GROUP]' });
  const users = table(passwd);
  let uid: number;
  let primaryGid = 0;
  if (numeric(userPart)) {
    uid = Number(userPart);
    const row = users.find((r) => r[2] === userPart);
    if (row && row[3] !== undefined && numeric(row[3])) primaryGid = Number(row[3]);
  } else {
    const row = users.find((r) => r[0] === userPart);
    if (!row || row[2] === undefined || !numeric(row[2])) {
      throw new LadingError(ERROR_CODES.DOCKERFILE_INVALID, `unable to find user ${userPart}: no matching entries in passwd file`, {
        hint: passwd === undefined ? 'the image has no /etc/passwd; use a numeric uid' : 'create the user in an earlier step, or use a numeric uid',
      });
    }
    uid = Number(row[2]);
    if (row[3] !== undefined && numeric(row[3])) primaryGid = Number(row[3]);
  }
  if (groupPart === undefined || groupPart === '') return { uid, gid: mode === 'chown' && numeric(userPart) ? uid : primaryGid };
  if (numeric(groupPart)) return { uid, gid: Number(groupPart) };
  const row = table(group).find((r) => r[0] === groupPart);
  if (!row || row[2] === undefined || !numeric(row[2])) {
    throw new LadingError(ERROR_CODES.DOCKERFILE_INVALID, `unable to find group ${groupPart}: no matching entries in group file`, {
      hint: group === undefined ? 'the image has no /etc/group; use a numeric gid' : 'create the group in an earlier step, or use a numeric gid',
    });
  }
  return { uid, gid: Number(row[2]) };
}
