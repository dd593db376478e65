/**
 * Licence strings as packages declare them (Debian short names, npm `license`, Python metadata,
 * Alpine `L:`) turned into SPDX licence expressions. Identifiers on the SPDX licence list keep
 * their canonical spelling; the common Debian and Python spellings are mapped to it; anything else
 * becomes a `LicenseRef-` whose original text the SBOM lists, so nothing is silently dropped or
 * passed off as a licence it is not.
 */
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
// Both packages are plain JSON arrays of identifiers (CC0-1.0 and CC-BY-3.0 data).
const LICENSE_IDS = require('spdx-license-ids') as string[];
const DEPRECATED_IDS = require('spdx-license-ids/deprecated.json') as string[];
const EXCEPTION_IDS = require('spdx-exceptions') as string[];

const BY_LOWER = new Map<string, string>();
for (const id of [...DEPRECATED_IDS, ...LICENSE_IDS]) BY_LOWER.set(id.toLowerCase(), id);
const EXCEPTIONS = new Map<string, string>(EXCEPTION_IDS.map((id) => [id.toLowerCase(), id]));

// Spellings that are not SPDX identifiers but name exactly one (keys are lowercase, spaces kept).
const ALIASES: Record<string, string> = {
  expat: 'MIT',
  'mit license': 'MIT',
  'the mit license': 'MIT',
  'mit/x11': 'MIT',
  'apache 2': 'Apache-2.0',
  'apache 2.0': 'Apache-2.0',
  'apache-2': 'Apache-2.0',
  'apache license 2.0': 'Apache-2.0',
  'apache license, version 2.0': 'Apache-2.0',
  'apache license version 2.0': 'Apache-2.0',
  'apache software license 2.0': 'Apache-2.0',
  'artistic': 'Artistic-1.0',
  'artistic-1': 'Artistic-1.0',
  'artistic-2': 'Artistic-2.0',
  'cc0': 'CC0-1.0',
  'psf': 'PSF-2.0',
  'psf-2': 'PSF-2.0',
  'psfl': 'PSF-2.0',
  'python-2.0': 'Python-2.0',
  'mpl-2': 'MPL-2.0',
  'mpl 2.0': 'MPL-2.0',
  'isc license': 'ISC',
  'bsd-3-clause-revised': 'BSD-3-Clause',
  'new bsd': 'BSD-3-Clause',
  'new bsd license': 'BSD-3-Clause',
  'simplified bsd': 'BSD-2-Clause',
  // The GNU identifiers SPDX deprecated in favour of explicit -only / -or-later.
  'gpl-1.0': 'GPL-1.0-only',
  'gpl-2.0': 'GPL-2.0-only',
  'gpl-3.0': 'GPL-3.0-only',
  'lgpl-2.0': 'LGPL-2.0-only',
  'lgpl-2.1': 'LGPL-2.1-only',
  'lgpl-3.0': 'LGPL-3.0-only',
  'agpl-3.0': 'AGPL-3.0-only',
  'gfdl-1.1': 'GFDL-1.1-only',
  'gfdl-1.2': 'GFDL-1.2-only',
  'gfdl-1.3': 'GFDL-1.3-only',
};

// Trove classifiers (`License :: OSI Approved :: …`) that name one licence and version.
const CLASSIFIERS: Record<string, string> = {
  'MIT License': 'MIT',
  'MIT No Attribution License (MIT-0)': 'MIT-0',
  'ISC License (ISCL)': 'ISC',
  'Apache Software License': 'Apache-2.0',
  'Mozilla Public License 2.0 (MPL 2.0)': 'MPL-2.0',
  'GNU General Public License v2 (GPLv2)': 'GPL-2.0-only',
  'GNU General Public License v2 or later (GPLv2+)': 'GPL-2.0-or-later',
  'GNU General Public License v3 (GPLv3)': 'GPL-3.0-only',
  'GNU General Public License v3 or later (GPLv3+)': 'GPL-3.0-or-later',
  'GNU Lesser General Public License v2 (LGPLv2)': 'LGPL-2.0-only',
  'GNU Lesser General Public License v2 or later (LGPLv2+)': 'LGPL-2.0-or-later',
  'GNU Lesser General Public License v3 (LGPLv3)': 'LGPL-3.0-only',
  'GNU Lesser General Public License v3 or later (LGPLv3+)': 'LGPL-3.0-or-later',
  'GNU Affero General Public License v3': 'AGPL-3.0-only',
  'GNU Affero General Public License v3 or later (AGPLv3+)': 'AGPL-3.0-or-later',
  'Python Software Foundation License': 'PSF-2.0',
  'The Unlicense (Unlicense)': 'Unlicense',
  'Zope Public License': 'ZPL-2.1',
  'Boost Software License 1.0 (BSL-1.0)': 'BSL-1.0',
  'Universal Permissive License (UPL)': 'UPL-1.0',
};

/** The longest licence text we treat as a name; longer values are licence texts, not names. */
const MAX_NAME = 200;

/** An expression in SPDX syntax plus the `LicenseRef-`s it introduced (id → the text they stand for). */
export interface LicenseExpression {
  expression: string;
  refs: Map<string, string>;
}

/** A LicenseRef id for text that names no SPDX licence: `LicenseRef-` + the text, made safe. */
export function licenseRef(text: string): string {
  const safe = text.trim().replace(/[^A-Za-z0-9.-]+/g, '-').replace(/^-+|-+$/g, '');
  return `LicenseRef-${safe === '' ? 'unknown' : safe.slice(0, 64)}`;
}

/** The SPDX identifier a single licence name stands for, or undefined. */
export function spdxIdentifier(name: string): string | undefined {
  const trimmed = name.trim();
  const lower = trimmed.toLowerCase();
  const direct = ALIASES[lower] ?? BY_LOWER.get(lower);
  if (direct) return ALIASES[direct.toLowerCase()] ?? direct;
  // Debian and Fedora write GNU licences as GPL-2, GPL-2+, LGPL-2.1+, GFDL-1.3.
  const gnu = /^(a?gpl|lgpl|gfdl)-?v?(\d(?:\.\d)?)(\+|-or-later|-only)?$/i.exec(trimmed);
  if (gnu) {
    const family = gnu[1]!.toUpperCase();
    const version = gnu[2]!.includes('.') ? gnu[2]! : `${gnu[2]}.0`;
    const id = `${family}-${version}-${gnu[3] === '+' || gnu[3]?.toLowerCase() === '-or-later' ? 'or-later' : 'only'}`;
    return BY_LOWER.get(id.toLowerCase());
  }
  return undefined;
}

type Token = { kind: 'op'; value: 'AND' | 'OR' | 'WITH' } | { kind: 'paren'; value: '(' | ')' } | { kind: 'word'; value: string };

function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  for (const raw of text.replace(/([()])/g, ' $1 ').split(/[\s,;|/]+/)) {
    if (raw === '') continue;
    const upper = raw.toUpperCase();
    if (upper === 'AND' || upper === 'OR' || upper === 'WITH') tokens.push({ kind: 'op', value: upper });
    else if (raw === '(' || raw === ')') tokens.push({ kind: 'paren', value: raw });
    else tokens.push({ kind: 'word', value: raw });
  }
  return tokens;
}

/**
 * Normalise one declared licence value. Returns undefined for values that are licence texts or
 * pointers ("SEE LICENSE IN …", "UNKNOWN") rather than names.
 */
export function normalizeLicense(value: string): LicenseExpression | undefined {
  const text = value.trim();
  if (text === '' || text.length > MAX_NAME || text.includes('\n')) return undefined;
  if (/^(unknown|none|noassertion|see license in\b|unlicensed$)/i.test(text)) return undefined;
  const refs = new Map<string, string>();
  const whole = spdxIdentifier(text);
  if (whole) return { expression: whole, refs };
  const words = tokenize(text);
  const out: string[] = [];
  let prevWasOperand = false;
  let depth = 0;
  for (let i = 0; i < words.length; i++) {
    const t = words[i]!;
    if (t.kind === 'op') {
      if (!prevWasOperand) return asRef(text);
      if (t.value === 'WITH') {
        // Exceptions must be on the SPDX exception list; "GPL-2+ with OpenSSL exception" is not.
        const exc = words[i + 1];
        const id = exc?.kind === 'word' ? EXCEPTIONS.get(exc.value.toLowerCase()) : undefined;
        if (!id) return asRef(text);
        out.push('WITH', id);
        i++;
        continue;
      }
      out.push(t.value);
      prevWasOperand = false;
      continue;
    }
    if (t.kind === 'paren') {
      if (t.value === '(') {
        if (prevWasOperand) out.push('AND');
        depth++;
        out.push('(');
        prevWasOperand = false;
      } else {
        if (depth === 0 || !prevWasOperand) return asRef(text);
        depth--;
        out.push(')');
      }
      continue;
    }
    // A bare list of names ("MIT BSD-2-Clause", as Alpine writes) means all of them apply.
    if (prevWasOperand) out.push('AND');
    const plus = t.value.endsWith('+') && !/^(a?gpl|lgpl|gfdl)/i.test(t.value);
    const id = spdxIdentifier(plus ? t.value.slice(0, -1) : t.value);
    if (id) out.push(plus && !id.endsWith('-or-later') ? `${id}+` : id);
    else {
      const ref = licenseRef(t.value);
      refs.set(ref, t.value);
      out.push(ref);
    }
    prevWasOperand = true;
  }
  if (depth !== 0 || !prevWasOperand || out.length === 0) return asRef(text);
  return { expression: out.join(' ').replace(/\( /g, '(').replace(/ \)/g, ')'), refs };
}

function asRef(text: string): LicenseExpression {
  const ref = licenseRef(text);
  return { expression: ref, refs: new Map([[ref, text]]) };
}

/** A Trove classifier's SPDX identifier, or a LicenseRef naming it. */
export function classifierLicense(classifier: string): LicenseExpression | undefined {
  const parts = classifier.split('::').map((p) => p.trim());
  if (parts[0] !== 'License' || parts.length < 2) return undefined;
  const last = parts[parts.length - 1]!;
  if (last === 'OSI Approved' || last === 'Other/Proprietary License') return undefined;
  const id = CLASSIFIERS[last];
  if (id) return { expression: id, refs: new Map() };
  return asRef(last);
}

/**
 * All of `values` as one expression: each normalised, duplicates dropped, joined with AND (a
 * package whose files carry several licences is under all of them), compound parts parenthesised.
 */
export function combineLicenses(values: LicenseExpression[]): LicenseExpression | undefined {
  const refs = new Map<string, string>();
  const parts = new Set<string>();
  for (const v of values) {
    for (const [k, t] of v.refs) refs.set(k, t);
    parts.add(v.expression);
  }
  if (parts.size === 0) return undefined;
  const sorted = [...parts].sort();
  if (sorted.length === 1) return { expression: sorted[0]!, refs };
  return { expression: sorted.map((p) => (/\s(OR|AND|WITH)\s/.test(p) ? `(${p})` : p)).join(' AND '), refs };
}
