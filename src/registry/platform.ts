/** Platforms as the registry client takes them: the image folder's model, re-exported. */
import type { Platform } from '../image/types.ts';

export { hostPlatform, normalizePlatform, parsePlatform, platformToString as formatPlatform, selectPlatform } from '../image/platform.ts';

/** os/architecture[/variant]: what choosing from an index needs. */
export type PlatformSpec = Pick<Platform, 'os' | 'architecture' | 'variant'>;
