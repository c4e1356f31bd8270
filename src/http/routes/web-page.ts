// GET / — the upload page (public/index.html) and its bundle (public/build/,
// made by `npm run build:web`; `npm start` builds it when missing). Static
// files only, no data: the page calls the API with the user's token.

import { existsSync } from 'node:fs';
import path from 'node:path';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance } from 'fastify';

/** <repo>/public, whether running from src/ (dev, tests) or the compiled dist/src/ (npm start). */
export const PUBLIC_DIR = [path.resolve(import.meta.dirname, '../../../public'), path.resolve(import.meta.dirname, '../../../../public')].find(
  (dir) => existsSync(path.join(dir, 'index.html')),
) ?? path.resolve(import.meta.dirname, '../../../public');

/**
 * The API answers with `default-src 'none'` (hardening.ts); the page needs its
 * own bundle, Uppy's inline styles, blob: previews and same-origin API calls.
 */
export const PAGE_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' blob: data:; connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

export async function webPageRoute(app: FastifyInstance): Promise<void> {
  app.addHook('onSend', async (_request, reply) => {
    reply.header('content-security-policy', PAGE_CSP);
  });
  await app.register(fastifyStatic, {
    root: PUBLIC_DIR,
    prefix: '/',
    // One route per file present at start-up, none for wildcards: the API's 404s stay ours.
    wildcard: false,
    allowedPath: (pathname) => pathname === '/' || pathname === '/index.html' || pathname.startsWith('/build/'),
    index: 'index.html',
    cacheControl: true,
    maxAge: 0,
  });
}
