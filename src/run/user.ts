/**
 * USER for a RUN step, resolved as runc does it (libcontainer/user.GetExecUser): through the
 * image's own /etc/passwd and /etc/group, by name or number, `user:group` forms, supplementary
 * groups from /etc/group membership unless a group is given, HOME from the passwd entry.
 */
import fs from 'node:fs';
import { ERROR_CODES, LadingError } from '../errors.ts';
import type { RootResolver } from './safe-path.ts';

export interface ResolvedUser {
  uid: number;
  gid: number;
  /** Supplementary groups, the primary group first. */
  groups: number[];
  home: string;
}

interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

interface GroupEntry {
  name: string;
  gid: number;
  members: string[];
}

const MAX_DB_BYTES = 8 * 1024 * 1024;

function readDb(resolver: RootResolver, rel: string): string[][] {
  let text: string;
  try {
    const abs = resolver.abs(resolver.resolve(rel, true));
    const st = fs.statSync(abs);
    if (!st.isFile() || st.size > MAX_DB_BYTES) return [];
    text = fs.readFileSync(abs, 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .filter((line) => line.trim() !== '' && !line.startsWith('#'))
    .map((line) => line.split(':'));
}

const isNumber = (s: string): boolean => /^[0-9]+$/.test(s);

function userError(message: string): LadingError {
  return new LadingError(ERROR_CODES.USAGE, message, {
    hint: 'create the user in an earlier step (RUN adduser ...) or give numeric ids (USER 1000:1000)',
  });
}

export function resolveUser(resolver: RootResolver, spec: string | undefined): ResolvedUser {
  const text = (spec ?? '').trim() || 'root';
  const colon = text.indexOf(':');
  const userPart = colon < 0 ? text : text.slice(0, colon);
  const groupPart = colon < 0 ? undefined : text.slice(colon + 1);
  const passwd: PasswdEntry[] = readDb(resolver, 'etc/passwd')
    .filter((f) => f.length >= 4 && isNumber(f[2]!) && isNumber(f[3]!))
    .map((f) => ({ name: f[0]!, uid: Number(f[2]), gid: Number(f[3]), home: f[5] || '/' }));
  const groupDb: GroupEntry[] = readDb(resolver, 'etc/group')
    .filter((f) => f.length >= 3 && isNumber(f[2]!))
    .map((f) => ({ name: f[0]!, gid: Number(f[2]), members: (f[3] ?? '').split(',').filter(Boolean) }));

  let entry: PasswdEntry | undefined;
  let uid: number;
  if (isNumber(userPart)) {
    uid = Number(userPart);
    entry = passwd.find((p) => p.uid === uid);
  } else {
    entry = passwd.find((p) => p.name === userPart);
    if (!entry) throw userError(`unable to find user ${userPart}: no matching entries in the image's /etc/passwd`);
    uid = entry.uid;
  }
  if (uid > 0xfffffffe) throw userError(`user id ${uid} is out of range`);

  let gid = entry?.gid ?? 0;
  let groups: number[] = [];
  if (groupPart !== undefined && groupPart !== '') {
    if (isNumber(groupPart)) gid = Number(groupPart);
    else {
      const group = groupDb.find((g) => g.name === groupPart);
      if (!group) throw userError(`unable to find group ${groupPart}: no matching entries in the image's /etc/group`);
      gid = group.gid;
    }
  } else if (entry) {
    groups = groupDb.filter((g) => g.members.includes(entry!.name)).map((g) => g.gid);
  }
  return { uid, gid, groups: [gid, ...groups.filter((g) => g !== gid)].filter((g, i, all) => all.indexOf(g) === i), home: entry?.home ?? '/' };
}

/** Docker's default PATH, used when the image sets none. */
export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** The step's environment: the engine's, plus PATH and HOME when it has none (as Docker does). */
export function stepEnv(env: string[], user: ResolvedUser): string[] {
  const out = env.filter((kv) => kv.includes('=') && !kv.startsWith('='));
  const has = (name: string): boolean => out.some((kv) => kv.startsWith(`${name}=`));
  if (!has('PATH')) out.push(`PATH=${DEFAULT_PATH}`);
  if (!has('HOME')) out.push(`HOME=${user.home}`);
  return out;
}
