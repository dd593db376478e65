/**
 * The attestation side of the CLI: the build flags `--sbom`, `--provenance`, `--attest-as`, and the
 * commands `lading sbom REF`, `lading provenance REF` and `lading attest verify REF`.
 */
import {
  ERROR_CODES,
  LadingError,
  readAttestations,
  readProvenance,
  readSbom,
  verifyAttestations,
  type AttachedDocument,
  type BuildOptions,
  type ReadAttestationsOptions,
  type RegistryOptions,
} from '../index.ts';
import { ATTEST_OPTIONS, COMMANDS, PROVENANCE_OPTIONS, SBOM_OPTIONS, helpText, parseCommand, usage, type OptionDef } from './options.ts';

/** What the commands need from main: the abort signal and the shared registry flags. */
export interface CommandContext {
  signal: AbortSignal;
  registryOptions: (values: Record<string, unknown>) => RegistryOptions;
}

/**
 * buildx lets `--sbom` and `--provenance` stand alone (meaning true); node's parser wants string
 * options to carry a value, so a bare flag becomes `--flag=true` before parsing.
 */
export function normalizeAttestFlags(args: string[]): string[] {
  const out: string[] = [];
  for (const [i, a] of args.entries()) {
    if (a === '--') {
      out.push(...args.slice(i));
      break;
    }
    out.push(a === '--sbom' || a === '--provenance' ? `${a}=true` : a);
  }
  return out;
}

/** `--sbom[=true|false]`, `--provenance=min|max|false` (buildx's `true`, `mode=…` too), `--attest-as=index|referrers`. */
export function attestationBuildOptions(values: Record<string, unknown>): Pick<BuildOptions, 'sbom' | 'provenance' | 'attestAs'> {
  const out: Pick<BuildOptions, 'sbom' | 'provenance' | 'attestAs'> = {};
  const sbom = values.sbom as string | undefined;
  if (sbom !== undefined) {
    if (/^(true|1)$/i.test(sbom)) out.sbom = true;
    else if (/^(false|0)$/i.test(sbom)) out.sbom = false;
    else throw usage(`unsupported --sbom "${sbom}"`, 'write --sbom, --sbom=true or --sbom=false (lading makes SPDX itself; there is no generator to choose)');
  }
  const provenance = values.provenance as string | undefined;
  if (provenance !== undefined) {
    const mode = provenance.replace(/^mode=/, '').toLowerCase();
    if (mode === 'true' || mode === '1' || mode === 'min') out.provenance = 'min';
    else if (mode === 'max') out.provenance = 'max';
    else if (mode === 'false' || mode === '0') out.provenance = false;
    else throw usage(`unsupported --provenance "${provenance}"`, 'use --provenance=min, --provenance=max or --provenance=false');
  }
  const attestAs = values['attest-as'] as string | undefined;
  if (attestAs !== undefined) {
    if (attestAs !== 'index' && attestAs !== 'referrers') throw usage(`unsupported --attest-as "${attestAs}"`, 'use --attest-as index (attestation manifests in the image index) or referrers (OCI 1.1 referrers)');
    out.attestAs = attestAs;
  }
  return out;
}

function help(name: string, values: Record<string, unknown>): boolean {
  if (!values.help) return false;
  process.stdout.write(helpText(COMMANDS.find((c) => c.name === name)!));
  return true;
}

function readOptions(values: Record<string, unknown>, ctx: CommandContext): ReadAttestationsOptions {
  return { ...ctx.registryOptions(values), ...(values.platform ? { platform: values.platform as string } : {}), signal: ctx.signal };
}

function json(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** One document as it is; several (a multi-platform image) keyed by platform, as `imagetools inspect` shows them. */
function printDocuments<P>(docs: AttachedDocument<P>[], statement: boolean): void {
  const pick = (d: AttachedDocument<P>): unknown => (statement ? d.statement : d.predicate);
  if (docs.length === 1) return json(pick(docs[0]!));
  const keyed: Record<string, unknown> = {};
  for (const d of docs) {
    let key = d.image.platform ?? d.image.digest;
    if (key in keyed) key = `${key} (${d.via})`;
    keyed[key] = pick(d);
  }
  json(keyed);
}

function oneRef(positionals: string[], command: string): string {
  if (positionals.length !== 1) throw usage(`${command} needs one image reference`, `lading ${command} registry.example.com/app:1.0, or lading ${command} oci:DIR[:TAG]`);
  return positionals[0]!;
}

/** `lading sbom REF`: the SPDX document(s) attached to an image. */
export async function sbomCommand(args: string[], ctx: CommandContext): Promise<number> {
  const { values: v, positionals } = parseCommand(args, SBOM_OPTIONS);
  if (help('sbom', v)) return 0;
  const ref = oneRef(positionals, 'sbom');
  const docs = await readSbom(ref, readOptions(v, ctx));
  if (docs.length === 0) throw new LadingError(ERROR_CODES.IMAGE, `no SBOM is attached to ${ref}`, { hint: 'build it with --sbom (on by default with --push)' });
  if (v.packages) {
    const rows = new Set<string>();
    for (const d of docs) {
      for (const p of d.predicate.packages) {
        if (p.primaryPackagePurpose === 'CONTAINER' || p.primaryPackagePurpose === 'OPERATING_SYSTEM') continue;
        const purl = p.externalRefs?.find((r) => r.referenceType === 'purl')?.referenceLocator ?? '';
        rows.add(`${docs.length > 1 ? `${d.image.platform ?? d.image.digest}\t` : ''}${p.name}\t${p.versionInfo ?? ''}\t${purl}`);
      }
    }
    process.stdout.write([...rows].map((r) => `${r}\n`).join(''));
    return 0;
  }
  printDocuments(docs, Boolean(v.statement));
  return 0;
}

/** `lading provenance REF`: the SLSA provenance attached to an image. */
export async function provenanceCommand(args: string[], ctx: CommandContext): Promise<number> {
  const { values: v, positionals } = parseCommand(args, PROVENANCE_OPTIONS);
  if (help('provenance', v)) return 0;
  const ref = oneRef(positionals, 'provenance');
  const docs = await readProvenance(ref, readOptions(v, ctx));
  if (docs.length === 0) throw new LadingError(ERROR_CODES.IMAGE, `no provenance is attached to ${ref}`, { hint: 'build it with --provenance=min or max (min is the default with --push)' });
  printDocuments(docs, Boolean(v.statement));
  return 0;
}

/** `lading attest verify REF` (and `lading attest ls REF`). */
export async function attestCommand(args: string[], ctx: CommandContext): Promise<number> {
  const { values: v, positionals } = parseCommand(args, ATTEST_OPTIONS);
  if (help('attest', v)) return 0;
  const [action, ...rest] = positionals;
  if (action !== 'verify' && action !== 'ls') throw usage(action === undefined ? 'attest needs an action' : `unknown attest action "${action}"`, 'use lading attest verify REF or lading attest ls REF');
  const ref = oneRef(rest, `attest ${action}`);
  if (action === 'ls') {
    const report = await readAttestations(ref, readOptions(v, ctx));
    if (v.json) json(report);
    else for (const a of report.attestations) process.stdout.write(`${a.image.platform ?? '-'}\t${a.image.digest}\t${a.via}\t${a.predicateType}\t${a.layer.digest}\n`);
    for (const p of report.problems) process.stderr.write(`warning: ${p}\n`);
    return 0;
  }
  const report = await verifyAttestations(ref, readOptions(v, ctx));
  if (v.json) json({ ok: report.ok, reference: report.reference, digest: report.digest, problems: report.problems, attestations: report.attestations.map((a) => ({ image: a.image, via: a.via, manifest: a.manifest.digest, layer: a.layer.digest, predicateType: a.predicateType })) });
  else {
    for (const a of report.attestations) process.stderr.write(`${a.image.platform ?? a.image.digest}: ${a.predicateType} (${a.via}, ${a.layer.digest})\n`);
    for (const p of report.problems) process.stderr.write(`problem: ${p}\n`);
  }
  if (!report.ok) {
    throw new LadingError(ERROR_CODES.DIGEST_MISMATCH, `the attestations of ${report.reference} do not verify: ${report.problems.length} problem${report.problems.length === 1 ? '' : 's'} (listed above)`, {
      hint: report.attestations.length === 0 ? 'build and push the image with --sbom or --provenance' : 'do not trust these attestations; rebuild and push the image with its attestations',
    });
  }
  process.stderr.write(`verified ${report.attestations.length} attestation${report.attestations.length === 1 ? '' : 's'} of ${report.images.length} image${report.images.length === 1 ? '' : 's'} in ${report.reference}\n`);
  if (!v.json) process.stdout.write(`${report.digest}\n`);
  return 0;
}
