/**
 * OCI 1.1 referrers: manifests that name another manifest as their `subject` (an SBOM, a
 * provenance statement, a signature about an image). Registries that implement the referrers API
 * (`GET /v2/<name>/referrers/<digest>`) index them when they are pushed; for those that do not
 * (CNCF Distribution 2.8, older Harbor, ECR before 2023) the distribution spec defines a fallback:
 * a tag `<alg>-<hex>` naming an image index of the subject's referrers, which the client that
 * pushes a referrer updates read-modify-write.
 *
 * Support is learnt by asking: a registry with the API answers the referrers endpoint with 200 and
 * an index (even an empty one); one without it answers 404 (or 400/405 from some proxies).
 */
import { ERROR_CODES, LadingError, isLadingError } from '../errors.ts';
import { digestAlgorithm, digestHex, isDigest, sha256 } from '../image/digest.ts';
import type { Image, ImageIndex } from '../image/image.ts';
import { canonicalBytes } from '../image/json.ts';
import { MediaType } from '../image/mediatypes.ts';
import type { Descriptor, Index, Manifest } from '../image/types.ts';
import { discard, readBody } from './http.ts';
import { fetchManifest, pullScope, type Repo } from './pull.ts';
import { sleep, type Transport } from './transport.ts';

/** How a subject's referrers were found or recorded. */
export type ReferrersVia = 'api' | 'tag';

export interface ReferrerList {
  /** The referrers' descriptors (with `artifactType` and the manifests' annotations). */
  descriptors: Descriptor[];
  via: ReferrersVia;
}

/** Pushes an image or index to references of one repository (the client's pushItem, bound). */
export type PushFn = (item: Image | ImageIndex, refs: { repo: Repo; identifier: string }[]) => Promise<void>;

/** The fallback tag of a subject: `sha256-<hex>`, as the distribution spec's tag schema names it. */
export function referrersTag(subjectDigest: string): string {
  if (!isDigest(subjectDigest)) throw new LadingError(ERROR_CODES.REFERENCE, `"${subjectDigest}" is not a digest`);
  // The schema caps the algorithm at 32 characters and the hex at 64, so a sha512 tag fits too.
  return `${digestAlgorithm(subjectDigest).slice(0, 32)}-${digestHex(subjectDigest).slice(0, 64)}`;
}

import { referrerDescriptor } from './referrer-descriptor.ts';

export { referrerDescriptor };

/**
 * Ask the referrers API. Undefined when the registry does not implement it, so the caller falls
 * back to the tag schema.
 */
async function referrersFromApi(t: Transport, repo: Repo, subjectDigest: string, artifactType?: string): Promise<Descriptor[] | undefined> {
  const query = artifactType ? `?artifactType=${encodeURIComponent(artifactType)}` : '';
  const res = await t.request({
    registry: repo.registry,
    method: 'GET',
    path: `/v2/${repo.repository}/referrers/${subjectDigest}${query}`,
    headers: { accept: MediaType.OCI_INDEX },
    scopes: [pullScope(repo.repository)],
    action: `list referrers of ${repo.repository}@${subjectDigest}`,
    accept: (s) => s === 200 || s === 404 || s === 400 || s === 405,
  });
  if (res.status !== 200) {
    discard(res);
    return undefined;
  }
  const type = res.headers.get('content-type')?.split(';')[0]?.trim();
  const bytes = await readBody(res, 4 * 1024 * 1024);
  let index: Index;
  try {
    index = JSON.parse(bytes.toString('utf8')) as Index;
  } catch {
    // A 200 that is not JSON is some front page or proxy answer, not the API.
    return undefined;
  }
  if (!Array.isArray(index.manifests) || (type !== undefined && type !== MediaType.OCI_INDEX && type !== 'application/json')) return undefined;
  return index.manifests;
}

/** The index the fallback tag names, or undefined when the tag does not exist. */
async function referrersFromTag(t: Transport, repo: Repo, subjectDigest: string): Promise<{ index: Index; digest: string } | undefined> {
  const tag = referrersTag(subjectDigest);
  let fetched;
  try {
    fetched = await fetchManifest(t, repo, tag);
  } catch (err) {
    if (isLadingError(err) && (err.details.status === 404 || err.details.registryCode === 'MANIFEST_UNKNOWN')) return undefined;
    throw err;
  }
  if (!('manifests' in fetched.doc)) {
    throw new LadingError(ERROR_CODES.IMAGE, `${repo.registry}/${repo.repository}:${tag} should be the referrers index of ${subjectDigest} but is an image manifest`, {
      hint: 'that tag is reserved for referrers by the OCI distribution spec; move the image it names to another tag',
    });
  }
  return { index: fetched.doc, digest: fetched.digest };
}

/** A subject's referrers (optionally of one artifact type): through the API, else the fallback tag. */
export async function listReferrers(t: Transport, repo: Repo, subjectDigest: string, options: { artifactType?: string } = {}): Promise<ReferrerList> {
  const fromApi = await referrersFromApi(t, repo, subjectDigest, options.artifactType);
  const filter = (list: Descriptor[]): Descriptor[] => (options.artifactType ? list.filter((d) => d.artifactType === options.artifactType) : list);
  // Registries may ignore the artifactType filter (they then omit OCI-Filters-Applied): filter here too.
  if (fromApi) return { descriptors: filter(fromApi), via: 'api' };
  const fromTag = await referrersFromTag(t, repo, subjectDigest);
  return { descriptors: filter(fromTag?.index.manifests ?? []), via: 'tag' };
}

/**
 * Push a referrer (a manifest with a `subject`) and make it findable: registries with the API
 * index it themselves; otherwise the subject's fallback tag index gets its descriptor. The
 * read-modify-write is checked by reading the tag back, and redone when a concurrent writer's
 * update replaced ours.
 */
export async function pushReferrer(t: Transport, repo: Repo, artifact: Image, push: PushFn): Promise<{ digest: string; via: ReferrersVia }> {
  const subject = artifact.manifest.subject;
  if (!subject) throw new LadingError(ERROR_CODES.INTERNAL, `referrer ${artifact.digest} has no subject`);
  await push(artifact, [{ repo, identifier: artifact.digest }]);

  const fromApi = await referrersFromApi(t, repo, subject.digest);
  if (fromApi) {
    // The registry indexes on push, though some only after a moment.
    for (const delay of [0, 200, 500, 1000, 2000]) {
      if (delay > 0) await sleep(delay, t.signal);
      const list = delay === 0 ? fromApi : ((await referrersFromApi(t, repo, subject.digest)) ?? []);
      if (list.some((d) => d.digest === artifact.digest)) return { digest: artifact.digest, via: 'api' };
    }
    // The API exists but did not index it (a registry ignoring `subject`): the tag schema still works.
  }

  const ours = referrerDescriptor(artifact.manifest, artifact.manifestBytes);
  for (let attempt = 0; attempt < 5; attempt++) {
    const current = await referrersFromTag(t, repo, subject.digest);
    const manifests = current?.index.manifests ?? [];
    if (manifests.some((d) => d.digest === ours.digest)) return { digest: artifact.digest, via: 'tag' };
    const index: Index = { schemaVersion: 2, mediaType: MediaType.OCI_INDEX, manifests: [...manifests, ours] };
    const indexBytes = canonicalBytes(index);
    await push({ index, indexBytes, digest: sha256(indexBytes), images: [] }, [{ repo, identifier: referrersTag(subject.digest) }]);
    const after = await referrersFromTag(t, repo, subject.digest);
    if (after?.index.manifests.some((d) => d.digest === ours.digest)) return { digest: artifact.digest, via: 'tag' };
    // Another writer's index replaced ours between our read and write: read again and add ours.
    await sleep(100 * (attempt + 1), t.signal);
  }
  throw new LadingError(ERROR_CODES.REGISTRY, `could not record referrer ${artifact.digest} in ${repo.registry}/${repo.repository}:${referrersTag(subject.digest)}: other writers kept replacing the index`, {
    hint: 'push the attestations again once the other pushes to this image have finished',
  });
}
