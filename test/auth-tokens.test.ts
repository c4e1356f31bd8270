// Bearer JWTs and API keys: what is accepted, and that every bad credential is
// a 401 JSON error (never a 500), including alg:none and HS/RS confusion.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { exportSPKI, SignJWT } from 'jose';
import { apiKey, AUDIENCE, bearer, hsEnv, hsToken, ISSUER, keyToken, noneToken, signingKey, startJwks, type JwksServer, type SigningKey } from './helpers/auth.ts';
import { call } from './helpers/http.ts';
import { startServer, type TestServer } from './helpers/server.ts';

async function expect401(srv: TestServer, headers: Record<string, string>, code = 'INVALID_CREDENTIALS'): Promise<void> {
  const r = await call(`${srv.url}/v1/files`, { headers });
  assert.equal(r.status, 401, r.body.toString());
  assert.equal(r.json<{ error: { code: string } }>().error.code, code);
  assert.match(String(r.headers['www-authenticate']), /^Bearer/);
}

describe('HS256 shared secret', () => {
  let srv: TestServer;
  before(async () => {
    srv = await startServer({ env: hsEnv() });
  });
  after(() => srv.close());

  test('a valid token is accepted', async () => {
    const r = await call(`${srv.url}/v1/files`, { headers: bearer(await hsToken()) });
    assert.equal(r.status, 200);
  });
  test('no credentials: 401 AUTH_REQUIRED with a Bearer challenge', () => expect401(srv, {}, 'AUTH_REQUIRED'));
  test('expired', async () => expect401(srv, bearer(await hsToken({ expiresIn: -10 }))));
  test('not yet valid (nbf)', async () => expect401(srv, bearer(await hsToken({ notBefore: 600 }))));
  test('wrong audience', async () => expect401(srv, bearer(await hsToken({ aud: 'someone-else' }))));
  test('wrong issuer', async () => expect401(srv, bearer(await hsToken({ iss: 'https://evil.test' }))));
  test('wrong signature', async () => expect401(srv, bearer(await hsToken({}, 'another-secret-of-sufficient-length-000000'))));
  test('tampered payload', async () => {
    const [h, , s] = (await hsToken()).split('.');
    const p = Buffer.from(JSON.stringify({ sub: 'x', tenant: 'other', scope: 'admin', iss: ISSUER, aud: AUDIENCE, exp: 2e9 })).toString('base64url');
    await expect401(srv, bearer(`${h}.${p}.${s}`));
  });
  test('alg: none', () => expect401(srv, bearer(noneToken())));
  test('iat in the future (would dodge revocation)', async () => expect401(srv, bearer(await hsToken({ iat: Math.floor(Date.now() / 1000) + 3600 }))));
  test('no tenant claim, or one that is not a tenant', async () => {
    await expect401(srv, bearer(await hsToken({ tenant: null })));
    for (const tenant of ['../other', 'Acme', '_system', 'a/b', '']) await expect401(srv, bearer(await hsToken({ tenant })));
  });
  test('malformed Authorization headers', async () => {
    for (const authorization of ['Bearer', 'Basic dXNlcjpwYXNz', 'Bearer a b', `Bearer ${'x'.repeat(10_000)}`, 'Bearer a.b.c']) {
      await expect401(srv, { authorization });
    }
  });
  test('an API key is refused when none are configured', () => expect401(srv, { 'x-api-key': 'sk_whatever' }));
});

describe('RS256/ES256 with a JWKS', () => {
  let srv: TestServer;
  let jwks: JwksServer;
  let rs: SigningKey;
  let es: SigningKey;
  before(async () => {
    rs = await signingKey('RS256', 'rs-1');
    es = await signingKey('ES256', 'es-1');
    jwks = await startJwks([rs.jwk, es.jwk]);
    srv = await startServer({ env: { SLUICE_AUTH_JWKS_URL: jwks.url, SLUICE_AUTH_ISSUER: ISSUER, SLUICE_AUTH_AUDIENCE: AUDIENCE } });
  });
  after(async () => {
    await srv.close();
    await jwks.close();
  });

  test('RS256 and ES256 tokens are accepted', async () => {
    for (const key of [rs, es]) {
      const r = await call(`${srv.url}/v1/files`, { headers: bearer(await keyToken(key)) });
      assert.equal(r.status, 200, r.body.toString());
    }
  });
  test('HS256 signed with the RSA public key (algorithm confusion) is 401, not 500', async () => {
    const pem = await exportSPKI(rs.publicKey);
    const forged = await new SignJWT({ tenant: 'acme', scope: 'admin' })
      .setProtectedHeader({ alg: 'HS256', kid: rs.kid })
      .setSubject('attacker').setIssuer(ISSUER).setAudience(AUDIENCE).setIssuedAt().setExpirationTime('1h')
      .sign(new TextEncoder().encode(pem));
    await expect401(srv, bearer(forged));
  });
  test('a token signed by a key not in the JWKS', async () => {
    const stranger = await signingKey('RS256', 'rs-1');
    await expect401(srv, bearer(await keyToken(stranger)));
  });
  test('alg: none', () => expect401(srv, bearer(noneToken())));
});

describe('both HS256 and a JWKS configured', () => {
  let srv: TestServer;
  let jwks: JwksServer;
  let rs: SigningKey;
  before(async () => {
    rs = await signingKey('RS256', 'rs-both');
    jwks = await startJwks([rs.jwk]);
    srv = await startServer({ env: hsEnv({ SLUICE_AUTH_JWKS_URL: jwks.url }) });
  });
  after(async () => {
    await srv.close();
    await jwks.close();
  });

  test('HS256 signed with the RSA public key is refused: HS256 only ever checks against the shared secret', async () => {
    const pem = await exportSPKI(rs.publicKey);
    const forged = await new SignJWT({ tenant: 'acme', scope: 'admin' })
      .setProtectedHeader({ alg: 'HS256', kid: rs.kid })
      .setSubject('attacker').setIssuer(ISSUER).setAudience(AUDIENCE).setIssuedAt().setExpirationTime('1h')
      .sign(new TextEncoder().encode(pem));
    await expect401(srv, bearer(forged));
  });
  test('each kind of token verifies against its own key', async () => {
    assert.equal((await call(`${srv.url}/v1/files`, { headers: bearer(await hsToken()) })).status, 200);
    assert.equal((await call(`${srv.url}/v1/files`, { headers: bearer(await keyToken(rs)) })).status, 200);
  });
});

describe('static API keys', () => {
  let srv: TestServer;
  const good = apiKey('ci', 'acme', ['files:read']);
  before(async () => {
    srv = await startServer({ env: { SLUICE_AUTH_API_KEYS: JSON.stringify([good.entry, apiKey('other', 'beta', ['files:read']).entry]) } });
  });
  after(() => srv.close());

  test('accepted in X-API-Key and as a bearer token', async () => {
    assert.equal((await call(`${srv.url}/v1/files`, { headers: { 'x-api-key': good.key } })).status, 200);
    assert.equal((await call(`${srv.url}/v1/files`, { headers: bearer(good.key) })).status, 200);
  });
  test('the configuration holds only a hash of the key', () => {
    assert.ok(!JSON.stringify(srv.config.security.apiKeys).includes(good.key));
  });
  test('a wrong, truncated or extended key is refused', async () => {
    for (const k of [good.key.slice(0, -1), `${good.key}x`, good.entry.sha256, 'sk_']) await expect401(srv, { 'x-api-key': k });
  });
  test('both headers at once are refused', () => expect401(srv, { 'x-api-key': good.key, ...bearer(good.key) }));
});
