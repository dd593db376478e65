/**
 * Choosing one image from an index by platform (os/architecture/variant), the way containerd's
 * default matcher does: the host's platform unless told otherwise, `arm64` equal to `arm64/v8`,
 * and an unspecified variant accepting any.
 */
import { ERROR_CODES, LadingError } from '../errors.ts';
import type { Descriptor, Platform } from '../image/types.ts';

export interface PlatformSpec {
  os: string;
  architecture: string;
  variant?: string;
}

/** `linux/arm64/v8` → spec. */
export function parsePlatform(text: string): PlatformSpec {
  const [os, architecture, variant, extra] = text.split('/');
  if (!os || !architecture || extra !== undefined) {
    throw new LadingError(ERROR_CODES.USAGE, `"${text}" is not a platform`, { hint: 'write os/architecture[/variant], e.g. linux/amd64 or linux/arm/v7' });
  }
  return normalizePlatform({ os, architecture, ...(variant ? { variant } : {}) });
}

export function formatPlatform(p: PlatformSpec | Platform): string {
  return `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ''}`;
}

const ARCH_ALIASES: Record<string, string> = { x86_64: 'amd64', x86: '386', i386: '386', aarch64: 'arm64', armhf: 'arm', armel: 'arm' };

export function normalizePlatform(p: PlatformSpec): PlatformSpec {
  const architecture = ARCH_ALIASES[p.architecture.toLowerCase()] ?? p.architecture.toLowerCase();
  let variant = p.variant?.toLowerCase();
  if (architecture === 'arm64' && variant === '8') variant = 'v8';
  if (architecture === 'arm' && variant && /^\d$/.test(variant)) variant = `v${variant}`;
  return { os: p.os.toLowerCase(), architecture, ...(variant ? { variant } : {}) };
}

/** The platform of the machine we run on, as images name it. */
export function hostPlatform(): PlatformSpec {
  const archMap: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64', loong64: 'loong64' };
  const architecture = archMap[process.arch] ?? process.arch;
  // Containers are Linux images on every host lading builds on (macOS and Windows run Linux VMs).
  const spec: PlatformSpec = { os: 'linux', architecture };
  if (architecture === 'arm') {
    const v = (process.config.variables as { arm_version?: string }).arm_version;
    if (v) spec.variant = `v${v}`;
  }
  return spec;
}

function variantMatches(want: PlatformSpec, have: Platform): boolean {
  if (!want.variant) return true;
  const h = have.variant ?? (have.architecture === 'arm64' ? 'v8' : undefined);
  const w = want.architecture === 'arm64' && want.variant === '8' ? 'v8' : want.variant;
  return h === w;
}

/** The descriptor in `manifests` for `want`, or an error listing what the index has. */
export function selectPlatform(manifests: Descriptor[], want: PlatformSpec, where: string): Descriptor {
  const w = normalizePlatform(want);
  const candidates = manifests.filter((d) => d.platform && d.platform.os !== 'unknown');
  const matches = candidates.filter((d) => {
    const p = normalizePlatform(d.platform!);
    return p.os === w.os && p.architecture === w.architecture && variantMatches(w, { ...d.platform!, ...p });
  });
  // Prefer an exact variant over "any": linux/arm/v7 before linux/arm.
  matches.sort((a, b) => Number(b.platform!.variant === w.variant) - Number(a.platform!.variant === w.variant));
  if (matches.length > 0) return matches[0]!;
  // An index whose entries name no platform at all (rare) is taken at its first image.
  if (candidates.length === 0 && manifests.length === 1) return manifests[0]!;
  const have = candidates.map((d) => formatPlatform(d.platform!));
  throw new LadingError(ERROR_CODES.IMAGE, `${where} has no image for ${formatPlatform(w)} (it has ${have.join(', ') || 'none'})`, {
    hint: 'choose one of its platforms with the platform option (--platform)',
    details: { platforms: have },
  });
}
