/** The version printed by `lading --version` and recorded as the builder in provenance. */
export const VERSION = '0.1.0';
