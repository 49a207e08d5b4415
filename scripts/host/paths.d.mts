// Types for paths.mjs (plain JS so setup.mjs runs without a TypeScript loader).
export const CODE_SERVER_VERSION: string;
export const NODE_PKG: string;
export const NODE_VERSION: string;
export const CHROMIUM: string;
export const APT_PACKAGES: string[];
export const repoRoot: string;
export const hostDir: string;
export const nodeDir: string;
export const nodeBin: string;
export const codeServerPkg: string;
export const codeServerEntry: string;
export const markerFile: string;
export const resultsDir: string;
export function expectedMarker(): { codeServer: string; node: string; chromium: string };
export function hostUnavailableReason(): string | undefined;
