/**
 * Where the build context came from when it is a git checkout: the remote URL (credentials never
 * included), the HEAD commit, whether the work tree differs from it, and the context's folder in
 * the repository. Read with the `git` command, which knows every repository layout git itself
 * supports (worktrees, submodules, packed refs).
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';

export interface GitSource {
  /** The remote's URL without user names, passwords, tokens, query or fragment; absent without a remote. */
  uri?: string;
  /** The full commit id of HEAD. */
  revision: string;
  /** True when tracked files differ from HEAD or untracked, unignored files exist. */
  dirty: boolean;
  /** The checked-out branch (`refs/heads/main`), absent on a detached HEAD. */
  ref?: string;
  /** The context folder relative to the repository root, absent when it is the root. */
  subdir?: string;
}

interface GitResult {
  ok: boolean;
  stdout: string;
}

function git(cwd: string, args: string[]): Promise<GitResult> {
  return new Promise((resolve) => {
    execFile(
      'git',
      args,
      {
        cwd,
        maxBuffer: 16 * 1024 * 1024,
        // Never prompt, never take locks: the user's own git commands may be running in this checkout.
        env: { ...process.env, GIT_TERMINAL_PROMPT: '0', GIT_OPTIONAL_LOCKS: '0', LC_ALL: 'C' },
      },
      // stderr is dropped on purpose: git's messages can quote remote URLs with their credentials.
      (err, stdout) => resolve({ ok: err === null, stdout: String(stdout) }),
    );
  });
}

/**
 * A remote URL fit to publish: user info (`user:token@`) removed from URLs with a scheme, and for
 * web URLs the query and fragment too (tokens travel there as well). scp-style `git@host:path`
 * keeps its user, which is the transport's fixed account name, not a secret.
 */
export function stripCredentials(url: string): string {
  const trimmed = url.trim();
  if (!/^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(trimmed)) return trimmed;
  let parsed: URL;
  try {
    parsed = new URL(trimmed);
  } catch {
    // Not a URL the WHATWG parser accepts: cut everything between the scheme and the last @ of the authority.
    return trimmed.replace(/^([A-Za-z][A-Za-z0-9+.-]*:\/\/)[^/]*@/, '$1');
  }
  const web = /^(https?|ftps?|git):$/.test(parsed.protocol);
  parsed.password = '';
  if (web) {
    parsed.username = '';
    parsed.search = '';
    parsed.hash = '';
  }
  return parsed.toString();
}

/** The git facts of `contextDir`, or undefined when it is not inside a work tree with a commit. */
export async function gitSource(contextDir: string): Promise<GitSource | undefined> {
  const top = await git(contextDir, ['rev-parse', '--show-toplevel']);
  if (!top.ok) return undefined;
  const head = await git(contextDir, ['rev-parse', '--verify', '-q', 'HEAD^{commit}']);
  if (!head.ok || !/^[0-9a-f]{40,64}$/.test(head.stdout.trim())) return undefined;
  const source: GitSource = { revision: head.stdout.trim(), dirty: false };

  const status = await git(contextDir, ['status', '--porcelain', '--untracked-files=normal']);
  source.dirty = !status.ok || status.stdout.trim() !== '';

  const branch = await git(contextDir, ['symbolic-ref', '-q', 'HEAD']);
  if (branch.ok && branch.stdout.trim() !== '') source.ref = branch.stdout.trim();

  const remote = await remoteName(contextDir, source.ref);
  if (remote) {
    const url = await git(contextDir, ['remote', 'get-url', remote]);
    if (url.ok && url.stdout.trim() !== '') source.uri = stripCredentials(url.stdout.trim());
  }

  const [root, dir] = await Promise.all([fs.realpath(top.stdout.trim()), fs.realpath(contextDir)]);
  const rel = path.relative(root, dir).split(path.sep).join('/');
  if (rel !== '' && !rel.startsWith('..')) source.subdir = rel;
  return source;
}

/** The remote the current branch tracks, else `origin`, else the first by name. */
async function remoteName(cwd: string, ref: string | undefined): Promise<string | undefined> {
  if (ref?.startsWith('refs/heads/')) {
    const tracked = await git(cwd, ['config', '--get', `branch.${ref.slice('refs/heads/'.length)}.remote`]);
    const name = tracked.stdout.trim();
    if (tracked.ok && name !== '' && name !== '.') return name;
  }
  const all = await git(cwd, ['remote']);
  const names = all.stdout.split('\n').map((s) => s.trim()).filter(Boolean);
  if (names.includes('origin')) return 'origin';
  return names.sort()[0];
}
