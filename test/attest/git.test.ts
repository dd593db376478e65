import test from 'ava';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { gitSource, stripCredentials } from '../../src/attest/git.ts';
import { testNeeding } from '../helpers/tools.ts';

const withGit = testNeeding(['git'], 'git source for provenance');
const SECRET = 'ghp_s3cretT0ken';

test('credentials never survive in a remote URL', (t) => {
  t.is(stripCredentials(`https://user:${SECRET}@github.com/org/repo.git`), 'https://github.com/org/repo.git');
  t.is(stripCredentials(`https://${SECRET}@github.com/org/repo.git`), 'https://github.com/org/repo.git');
  t.is(stripCredentials(`https://x-access-token:${SECRET}@github.com/org/repo`), 'https://github.com/org/repo');
  t.is(stripCredentials(`https://gitlab.example.com/org/repo.git?private_token=${SECRET}#frag`), 'https://gitlab.example.com/org/repo.git');
  t.is(stripCredentials(`http://u:${SECRET}@10.0.0.1:8080/repo`), 'http://10.0.0.1:8080/repo');
  t.is(stripCredentials(`ssh://git:${SECRET}@example.com:2222/org/repo.git`), 'ssh://git@example.com:2222/org/repo.git');
  t.is(stripCredentials('git@github.com:org/repo.git'), 'git@github.com:org/repo.git');
  t.is(stripCredentials('/srv/git/repo.git'), '/srv/git/repo.git');
  t.is(stripCredentials(`https://us%20er:${SECRET}@host/r`), 'https://host/r');
});

async function repo(): Promise<{ dir: string; git: (...args: string[]) => string }> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'lading-git-'));
  const env = { ...process.env, GIT_CONFIG_GLOBAL: '/dev/null', GIT_CONFIG_NOSYSTEM: '1', HOME: dir };
  const git = (...args: string[]): string => execFileSync('git', args, { cwd: dir, env, encoding: 'utf8' }).trim();
  git('init', '-q', '-b', 'main');
  git('config', 'user.email', 'test@example.com');
  git('config', 'user.name', 'Test');
  await fs.mkdir(path.join(dir, 'services/app'), { recursive: true });
  await fs.writeFile(path.join(dir, 'services/app/Dockerfile'), 'FROM scratch\n');
  git('add', '.');
  git('commit', '-q', '-m', 'first');
  return { dir, git };
}

withGit('a checkout: revision, branch, remote without credentials, subdirectory, dirty flag', async (t) => {
  const { dir, git } = await repo();
  try {
    git('remote', 'add', 'origin', `https://builder:${SECRET}@git.example.com/team/app.git`);
    const head = git('rev-parse', 'HEAD');
    const clean = await gitSource(path.join(dir, 'services/app'));
    t.deepEqual(clean, { uri: 'https://git.example.com/team/app.git', revision: head, dirty: false, ref: 'refs/heads/main', subdir: 'services/app' });
    t.false(JSON.stringify(clean).includes(SECRET));

    await fs.writeFile(path.join(dir, 'services/app/Dockerfile'), 'FROM scratch\nLABEL x=y\n');
    t.true((await gitSource(dir))?.dirty);
    git('checkout', '-q', '--', '.');
    await fs.writeFile(path.join(dir, 'untracked.txt'), 'new\n');
    t.true((await gitSource(dir))?.dirty);
    await fs.rm(path.join(dir, 'untracked.txt'));
    t.false((await gitSource(dir))?.dirty);

    git('checkout', '-q', '--detach');
    const detached = await gitSource(dir);
    t.is(detached?.ref, undefined);
    t.is(detached?.subdir, undefined);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

withGit('no remote, the tracked remote, and folders that are not checkouts', async (t) => {
  const { dir, git } = await repo();
  const outside = await fs.mkdtemp(path.join(os.tmpdir(), 'lading-nogit-'));
  try {
    t.is((await gitSource(dir))?.uri, undefined);
    git('remote', 'add', 'upstream', `https://u:${SECRET}@example.com/up.git`);
    git('remote', 'add', 'origin', 'git@example.com:team/app.git');
    git('config', 'branch.main.remote', 'upstream');
    t.is((await gitSource(dir))?.uri, 'https://example.com/up.git');
    t.is(await gitSource(outside), undefined);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
    await fs.rm(outside, { recursive: true, force: true });
  }
});
