// JWKS key rotation: a token signed with a key added to the JWKS after start-up
// is accepted once sluice refetches (an unknown kid triggers it, at most once
// per cooldown); a removed key stops working once the cache expires. An
// unreachable JWKS is 503 AUTH_UNAVAILABLE (retry), not 401 and not 500.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { AUDIENCE, bearer, ISSUER, keyToken, signingKey, startJwks, type JwksServer } from './helpers/auth.ts';
import { call } from './helpers/http.ts';
import { startServer, type TestServer } from './helpers/server.ts';

const CACHE_MS = 1500;
let srv: TestServer;
let jwks: JwksServer;
before(async () => {
  jwks = await startJwks([]);
  srv = await startServer({
    env: {
      SLUICE_AUTH_JWKS_URL: jwks.url,
      SLUICE_AUTH_ISSUER: ISSUER,
      SLUICE_AUTH_AUDIENCE: AUDIENCE,
      SLUICE_AUTH_JWKS_CACHE_MS: String(CACHE_MS),
      SLUICE_AUTH_JWKS_COOLDOWN_MS: '0',
    },
  });
});
after(async () => {
  await srv.close();
  await jwks.close();
});

const status = async (token: string) => (await call(`${srv.url}/v1/files`, { headers: bearer(token) })).status;

test('keys rotate without a restart; removed keys stop working after the cache time', async () => {
  const k1 = await signingKey('RS256', 'k1');
  jwks.keys = [k1.jwk];
  assert.equal(await status(await keyToken(k1)), 200);

  // Rotation: the issuer publishes k2 next to k1, then signs with k2.
  const k2 = await signingKey('ES256', 'k2');
  jwks.keys = [k1.jwk, k2.jwk];
  const fetchesBefore = jwks.fetches;
  assert.equal(await status(await keyToken(k2)), 200);
  assert.ok(jwks.fetches > fetchesBefore, 'the unknown kid made sluice refetch the JWKS');

  // k1 retired: refused once the cached set expires.
  jwks.keys = [k2.jwk];
  await new Promise((resolve) => setTimeout(resolve, CACHE_MS + 300));
  assert.equal(await status(await keyToken(k1)), 401);
  assert.equal(await status(await keyToken(k2)), 200);
});

test('an unreachable JWKS is 503 AUTH_UNAVAILABLE with Retry-After', async () => {
  const k3 = await signingKey('RS256', 'k3');
  jwks.down = true;
  try {
    const r = await call(`${srv.url}/v1/files`, { headers: bearer(await keyToken(k3)) });
    assert.equal(r.status, 503, r.body.toString());
    assert.equal(r.json<{ error: { code: string } }>().error.code, 'AUTH_UNAVAILABLE');
    assert.ok(r.headers['retry-after']);
  } finally {
    jwks.down = false;
  }
});
