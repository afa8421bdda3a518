import { endianness } from 'node:os';
import { TesseraError } from './errors';
import type { Descriptor, ImageIndex, Platform } from './types';

/** Node's `process.arch` names in Go's GOARCH terms, which the OCI spec uses. */
const NODE_ARCH: Record<string, { architecture: string; variant?: string }> = {
  x64: { architecture: 'amd64' },
  arm64: { architecture: 'arm64', variant: 'v8' },
  arm: { architecture: 'arm', variant: 'v7' },
  ia32: { architecture: '386' },
  ppc64: { architecture: endianness() === 'LE' ? 'ppc64le' : 'ppc64' },
  s390x: { architecture: 's390x' },
  riscv64: { architecture: 'riscv64' },
  loong64: { architecture: 'loong64' },
  mips: { architecture: 'mips' },
  mipsel: { architecture: 'mipsle' },
};

/** Names other tools use for the same architecture. */
const ARCH_ALIASES: Record<string, string> = {
  x86_64: 'amd64',
  'x86-64': 'amd64',
  aarch64: 'arm64',
  armhf: 'arm',
  armel: 'arm',
  i386: '386',
  i686: '386',
};

/** The variant an architecture means when none is written (containerd's normalisation). */
const DEFAULT_VARIANT: Record<string, string> = { arm64: 'v8', arm: 'v7', amd64: 'v1' };

/** The platform this process runs on, as an image platform. */
export function hostPlatform(): Platform {
  const os = process.platform === 'win32' ? 'windows' : process.platform;
  const arch = NODE_ARCH[process.arch] ?? { architecture: process.arch };
  if (process.arch === 'arm') {
    const armVersion = (process.config.variables as Record<string, unknown>)['arm_version'];
    if (armVersion !== undefined && armVersion !== 'default') return { os, architecture: 'arm', variant: `v${String(armVersion)}` };
  }
  return arch.variant ? { os, architecture: arch.architecture, variant: arch.variant } : { os, architecture: arch.architecture };
}

/** Parses `os/arch[/variant]`, e.g. `linux/amd64` or `linux/arm64/v8`; a bare arch means linux. */
export function parsePlatform(input: string): Platform {
  const parts = input.trim().split('/');
  if (parts.length === 1 && parts[0]) parts.unshift('linux');
  const [os, architecture, variant, ...extra] = parts;
  if (!os || !architecture || extra.length > 0 || variant === '' || !parts.every((p) => /^[a-zA-Z0-9_.-]+$/.test(p))) {
    throw new TesseraError(`invalid platform ${JSON.stringify(input)}: expected os/arch[/variant], e.g. linux/amd64 or linux/arm64/v8`, 'INVALID_PLATFORM');
  }
  const arch = ARCH_ALIASES[architecture.toLowerCase()] ?? architecture.toLowerCase();
  return variant ? { os: os.toLowerCase(), architecture: arch, variant: variant.toLowerCase() } : { os: os.toLowerCase(), architecture: arch };
}

/** `os/arch[/variant]`. */
export function formatPlatform(platform: Platform): string {
  return [platform.os, platform.architecture, platform.variant].filter(Boolean).join('/');
}

/** The same platform in canonical terms: aliases resolved, and the default variant written out. */
export function normalizePlatform(platform: Platform): Platform {
  const architecture = ARCH_ALIASES[platform.architecture] ?? platform.architecture;
  const variant = platform.variant || DEFAULT_VARIANT[architecture];
  const out: Platform = { ...platform, architecture };
  if (variant) out.variant = variant;
  else delete out.variant;
  return out;
}

/**
 * Whether an image for `have` serves a request for `want`: same os and architecture, and the same
 * variant after defaults (arm64 means v8, arm means v7, amd64 means v1). An `os.version` in `want`
 * must prefix the one in `have`.
 */
export function platformMatches(want: Platform, have: Platform): boolean {
  const w = normalizePlatform(want);
  const h = normalizePlatform(have);
  if (w.os !== h.os || w.architecture !== h.architecture || w.variant !== h.variant) return false;
  if (w['os.version'] && h['os.version'] && !h['os.version'].startsWith(w['os.version'])) return false;
  return true;
}

/** The index entry for a platform; the error lists what the index offers. Attestation entries never match. */
export function selectManifest(index: ImageIndex, want: Platform): Descriptor {
  const candidates = index.manifests.filter((d) => d.platform && d.platform.os !== 'unknown');
  const found = candidates.find((d) => platformMatches(want, d.platform!));
  if (found) return found;
  const available = candidates.map((d) => formatPlatform(d.platform!));
  throw new TesseraError(
    `no image for platform ${formatPlatform(want)} in the index; available: ${available.length ? available.join(', ') : 'none'}`,
    'PLATFORM_NOT_FOUND',
    'choose one of the available platforms with --platform',
  );
}
