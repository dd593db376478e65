/**
 * The names attestations are known by, in a module of their own: reading or routing attestations
 * needs these, not the scanners and generators behind them (which load only when one is made).
 */
export const INTOTO_STATEMENT_TYPE = 'https://in-toto.io/Statement/v1';
export const SLSA_PROVENANCE_PREDICATE_TYPE = 'https://slsa.dev/provenance/v1';
export const SPDX_PREDICATE_TYPE = 'https://spdx.dev/Document';
export const SPDX_MEDIA_TYPE = 'application/spdx+json';
