// Credentials for tests: HS256 tokens with the shared secret, key pairs and a
// real JWKS server on loopback for RS256/ES256, API keys with their entries.

import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK, type JWTPayload } from 'jose';
import type { ApiKeyEntry } from '../../src/core/auth/api-keys.ts';
import type { Scope } from '../../src/core/auth/scopes.ts';
import { generateApiKey } from '../../src/core/auth/api-keys.ts';

export const JWT_SECRET = 'test-secret-0123456789-abcdefghijklmnopqrstuvwxyz';
export const ISSUER = 'https://issuer.test';
export const AUDIENCE = 'sluice-test';
export const ALL_SCOPES: Scope[] = ['files:read', 'files:write', 'files:delete', 'admin'];

export function hsEnv(extra: Record<string, string> = {}): Record<string, string> {
  return { SLUICE_AUTH_JWT_SECRET: JWT_SECRET, SLUICE_AUTH_ISSUER: ISSUER, SLUICE_AUTH_AUDIENCE: AUDIENCE, SLUICE_AUTH_CLOCK_SKEW_S: '0', ...extra };
}

export interface TokenOpts {
  sub?: string;
  tenant?: string | null;
  scopes?: readonly string[];
  iss?: string;
  aud?: string;
  /** Seconds from now; negative for an expired token. */
  expiresIn?: number;
  /** Seconds from now. */
  notBefore?: number;
  /** Seconds since the epoch. */
  iat?: number;
  claims?: JWTPayload;
}

function payload(o: TokenOpts): JWTPayload {
  const p: JWTPayload = { scope: (o.scopes ?? ALL_SCOPES).join(' '), ...o.claims };
  if (o.tenant !== null) p.tenant = o.tenant ?? 'acme';
  return p;
}

async function sign(o: TokenOpts, alg: string, key: CryptoKey | Uint8Array, kid?: string): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const jwt = new SignJWT(payload(o))
    .setProtectedHeader(kid ? { alg, kid } : { alg })
    .setSubject(o.sub ?? 'user-1')
    .setIssuer(o.iss ?? ISSUER)
    .setAudience(o.aud ?? AUDIENCE)
    .setIssuedAt(o.iat ?? now)
    .setExpirationTime(now + (o.expiresIn ?? 3600));
  if (o.notBefore !== undefined) jwt.setNotBefore(now + o.notBefore);
  return jwt.sign(key);
}

export function hsToken(o: TokenOpts = {}, secret = JWT_SECRET): Promise<string> {
  return sign(o, 'HS256', new TextEncoder().encode(secret));
}

export function bearer(token: string): Record<string, string> {
  return { authorization: `Bearer ${token}` };
}

/** An unsigned token (`alg: none`), as an attacker would craft it. */
export function noneToken(o: TokenOpts = {}): string {
  const now = Math.floor(Date.now() / 1000);
  const enc = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
  return `${enc({ alg: 'none', typ: 'JWT' })}.${enc({ ...payload(o), sub: o.sub ?? 'user-1', iss: ISSUER, aud: AUDIENCE, iat: now, exp: now + 3600 })}.`;
}

export interface SigningKey {
  alg: 'RS256' | 'ES256';
  kid: string;
  privateKey: CryptoKey;
  publicKey: CryptoKey;
  jwk: JWK;
}

export async function signingKey(alg: 'RS256' | 'ES256', kid: string): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const jwk = { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' };
  return { alg, kid, privateKey, publicKey, jwk };
}

export function keyToken(key: SigningKey, o: TokenOpts = {}): Promise<string> {
  return sign(o, key.alg, key.privateKey, key.kid);
}

/** A JWKS endpoint on loopback whose key set the test can change (rotation) or break. */
export interface JwksServer {
  url: string;
  keys: JWK[];
  fetches: number;
  down: boolean;
  close(): Promise<void>;
}

export async function startJwks(keys: JWK[]): Promise<JwksServer> {
  const state = { keys, fetches: 0, down: false };
  const server: Server = createServer((_req, res) => {
    state.fetches++;
    if (state.down) {
      res.writeHead(500).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: state.keys }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return Object.assign(state, {
    url: `http://127.0.0.1:${port}/.well-known/jwks.json`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  }) as JwksServer;
}

export function apiKey(id: string, tenant: string, scopes: Scope[]): { key: string; entry: ApiKeyEntry } {
  return generateApiKey({ id, tenant, scopes });
}
