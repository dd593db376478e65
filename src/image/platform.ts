/** Platform strings (`linux/arm64/v8`) parsed and normalised the way containerd does. */
import { arch as hostArch } from 'node:process';
import { ERROR_CODES, LadingError } from '../errors.ts';
import type { Descriptor, Platform } from './types.ts';

const ARCH_ALIASES: Record<string, string> = {
  x86_64: 'amd64',
  'x86-64': 'amd64',
  aarch64: 'arm64',
  armhf: 'arm',
  armel: 'arm',
  i386: '386',
  i686: '386',
  x64: 'amd64',
  ia32: '386',
};

/** Parse `os/arch[/variant]` or `arch`; normalises aliases and default variants. */
export function parsePlatform(text: string): Platform {
  const parts = text.trim().toLowerCase().split('/');
  if (parts.some((p) => p === '') || parts.length > 3) {
    throw new LadingError(ERROR_CODES.USAGE, `invalid platform "${text}"`, { hint: 'write OS/ARCH[/VARIANT], for example linux/amd64 or linux/arm/v7' });
  }
  let os: string;
  let architecture: string;
  let variant: string | undefined;
  if (parts.length === 1) {
    os = 'linux';
    architecture = parts[0]!;
  } else {
    [os, architecture, variant] = parts as [string, string, string | undefined];
  }
  return normalizePlatform({ os, architecture, ...(variant ? { variant } : {}) });
}

export function normalizePlatform(p: Platform): Platform {
  const originalArch = p.architecture;
  let architecture = ARCH_ALIASES[p.architecture] ?? p.architecture;
  let variant = p.variant;
  if (architecture === 'arm64') {
    if (variant === 'v8' || variant === '8') variant = undefined;
  } else if (architecture === 'arm') {
    if (variant === undefined) variant = originalArch === 'armel' ? 'v6' : 'v7';
    else if (/^\d$/.test(variant)) variant = `v${variant}`;
  } else if (architecture === 'amd64' && variant === 'v1') {
    variant = undefined;
  }
  if (architecture === 'arm' && originalArch === 'aarch64') architecture = 'arm64';
  const out: Platform = { os: p.os, architecture };
  if (variant) out.variant = variant;
  if (p['os.version']) out['os.version'] = p['os.version'];
  return out;
}

/** The platform of the machine we run on, as images name it. */
export function hostPlatform(): Platform {
  const map: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64', loong64: 'loong64' };
  const architecture = map[hostArch] ?? hostArch;
  // Containers are Linux images on every host lading builds on (macOS and Windows run Linux VMs).
  const p: Platform = { os: 'linux', architecture };
  if (architecture === 'arm') {
    const v = (process.config.variables as { arm_version?: string }).arm_version;
    if (v) p.variant = `v${v}`;
  }
  return normalizePlatform(p);
}

export function platformToString(p: Platform): string {
  return `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ''}`;
}

/** Whether an image for `have` satisfies a request for `want` (variant only compared when asked for). */
export function platformMatches(have: Platform | undefined, want: Platform): boolean {
  if (!have) return false;
  const h = normalizePlatform(have);
  const w = normalizePlatform(want);
  if (h.os !== w.os || h.architecture !== w.architecture) return false;
  if (w.variant !== undefined && h.variant !== undefined && h.variant !== w.variant) return false;
  return true;
}

/**
 * The descriptor in an index's `manifests` for `want`, the way containerd's default matcher
 * chooses: same os and architecture, an unspecified variant accepting any, an exact variant
 * preferred; `unknown/unknown` entries (attestations) never chosen. Otherwise an error listing
 * what the index has.
 */
export function selectPlatform(manifests: Descriptor[], want: Platform, where: string): Descriptor {
  const w = normalizePlatform(want);
  const candidates = manifests.filter((d) => d.platform && d.platform.os !== 'unknown');
  const matches = candidates.filter((d) => platformMatches(d.platform, w));
  matches.sort((a, b) => Number(normalizePlatform(b.platform!).variant === w.variant) - Number(normalizePlatform(a.platform!).variant === w.variant));
  if (matches.length > 0) return matches[0]!;
  // An index whose entries name no platform at all (rare) is taken at its first image.
  if (candidates.length === 0 && manifests.length === 1) return manifests[0]!;
  const have = candidates.map((d) => platformToString(d.platform!));
  throw new LadingError(ERROR_CODES.IMAGE, `${where} has no image for ${platformToString(w)} (it has ${have.join(', ') || 'none'})`, {
    hint: 'choose one of its platforms with --platform',
    details: { platforms: have },
  });
}
