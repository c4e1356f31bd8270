// Bearer JWTs verified with jose. The algorithm is pinned by configuration, not
// taken from the token: HS256 only with the shared secret, the configured
// asymmetric algorithms only with the JWKS. `alg: none`, HS/RS confusion (an
// HS256 token "signed" with the RSA public key) and every other failure are
// INVALID_CREDENTIALS, whatever jose throws (it answers some confusions with a
// plain TypeError). Only an unreachable JWKS is AUTH_UNAVAILABLE (503): the
// token may be fine, the service cannot tell.

import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import type { SecurityConfig } from '../../config.ts';
import { isScope, type Scope } from './scopes.ts';
import { SluiceError, isSluiceError } from '../../errors.ts';
import { isTenant } from '../keys.ts';
import type { Principal } from './principal.ts';

/** Tokens longer than this are refused before any parsing. */
const MAX_TOKEN_CHARS = 8192;
const MAX_SUBJECT_CHARS = 256;
const JOSE_401_CODES = new Set(['ERR_JWKS_NO_MATCHING_KEY', 'ERR_JWKS_MULTIPLE_MATCHING_KEYS']);

export function looksLikeJwt(token: string): boolean {
  return /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/.test(token);
}

export class JwtVerifier {
  readonly #cfg: SecurityConfig['jwt'];
  readonly #secret: Uint8Array | undefined;
  readonly #jwks: JWTVerifyGetKey | undefined;

  constructor(cfg: SecurityConfig['jwt']) {
    this.#cfg = cfg;
    this.#secret = cfg.secret === undefined ? undefined : new TextEncoder().encode(cfg.secret);
    if (cfg.jwksUrl !== undefined) {
      const remote = createRemoteJWKSet(new URL(cfg.jwksUrl), {
        cacheMaxAge: cfg.jwksCacheMs,
        cooldownDuration: cfg.jwksCooldownMs,
        timeoutDuration: 5000,
      });
      this.#jwks = async (header, token) => {
        try {
          return await remote(header, token);
        } catch (err) {
          if (JOSE_401_CODES.has((err as { code?: string }).code ?? '')) throw err;
          throw new SluiceError('AUTH_UNAVAILABLE', { cause: err });
        }
      };
    }
  }

  get enabled(): boolean {
    return this.#secret !== undefined || this.#jwks !== undefined;
  }

  async verify(token: string): Promise<Principal> {
    if (token.length > MAX_TOKEN_CHARS || !looksLikeJwt(token)) throw invalid('malformed token');
    let alg: string | undefined;
    try {
      alg = decodeProtectedHeader(token).alg;
    } catch {
      throw invalid('malformed token header');
    }
    const options = {
      issuer: this.#cfg.issuer,
      audience: this.#cfg.audience,
      clockTolerance: this.#cfg.clockSkewS,
      requiredClaims: ['exp', 'sub'],
    };
    let payload: JWTPayload;
    try {
      if (alg === 'HS256' && this.#secret) {
        ({ payload } = await jwtVerify(token, this.#secret, { ...options, algorithms: ['HS256'] }));
      } else if (alg !== undefined && this.#jwks && this.#cfg.algorithms.includes(alg)) {
        ({ payload } = await jwtVerify(token, this.#jwks, { ...options, algorithms: [...this.#cfg.algorithms] }));
      } else {
        throw invalid(`algorithm ${JSON.stringify(alg ?? null).slice(0, 20)} is not accepted`);
      }
    } catch (err) {
      if (isSluiceError(err)) throw err;
      // JOSE errors and jose's TypeErrors alike: the token is not acceptable.
      const code = (err as { code?: string }).code;
      throw invalid(code === 'ERR_JWT_EXPIRED' ? 'token expired' : code === 'ERR_JWT_CLAIM_VALIDATION_FAILED' ? (err as Error).message : 'verification failed', err);
    }
    return this.#principal(payload);
  }

  #principal(p: JWTPayload): Principal {
    const tenant = p[this.#cfg.tenantClaim];
    if (typeof tenant !== 'string' || !isTenant(tenant)) throw invalid(`claim "${this.#cfg.tenantClaim}" is missing or not a valid tenant`);
    if (typeof p.sub !== 'string' || p.sub === '' || p.sub.length > MAX_SUBJECT_CHARS) throw invalid('claim "sub" is missing or too long');
    // A future iat would outlive every revocation; a real issuer never sends one.
    if (typeof p.iat === 'number' && p.iat > Date.now() / 1000 + this.#cfg.clockSkewS) throw invalid('claim "iat" is in the future');
    return {
      subject: p.sub,
      tenant,
      scopes: scopesOf(p),
      issuedAt: typeof p.iat === 'number' && Number.isFinite(p.iat) ? p.iat : 0,
      kind: 'jwt',
    };
  }
}

/** OAuth `scope` (space-separated) or `scp` (array or string); unknown scopes are ignored. */
function scopesOf(p: JWTPayload): Set<Scope> {
  const raw: unknown[] = [];
  for (const v of [p.scope, p.scp]) {
    if (typeof v === 'string') raw.push(...v.split(' '));
    else if (Array.isArray(v)) raw.push(...(v as unknown[]));
  }
  return new Set(raw.filter(isScope));
}

function invalid(reason: string, cause?: unknown): SluiceError {
  return new SluiceError('INVALID_CREDENTIALS', {
    message: `The token is not valid: ${reason}`,
    cause,
    headers: { 'www-authenticate': 'Bearer error="invalid_token"' },
  });
}
