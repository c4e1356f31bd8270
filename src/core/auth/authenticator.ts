// Turns presented credentials into a Principal, or a coded 401. JWTs and API
// keys may both be enabled; a bearer value shaped like a JWT is a JWT, any
// other bearer value (or X-API-Key) is an API key. Then revocation is checked.

import type { SecurityConfig } from '../../config.ts';
import { SluiceError } from '../../errors.ts';
import { ApiKeys } from './api-keys.ts';
import { JwtVerifier, looksLikeJwt } from './jwt.ts';
import type { PresentedCredentials, Principal } from './principal.ts';
import type { RevocationStore } from './revocations.ts';

const CHALLENGE = { 'www-authenticate': 'Bearer' };
/** Longest credential looked at; anything longer is refused unread. */
const MAX_CREDENTIAL_CHARS = 8192;

export class Authenticator {
  readonly #jwt: JwtVerifier;
  readonly #keys: ApiKeys;
  readonly #revocations: RevocationStore;

  constructor(cfg: SecurityConfig, revocations: RevocationStore) {
    this.#jwt = new JwtVerifier(cfg.jwt);
    this.#keys = new ApiKeys(cfg.apiKeys);
    this.#revocations = revocations;
  }

  async authenticate(creds: PresentedCredentials): Promise<Principal> {
    const principal = await this.#identify(creds);
    const notBefore = await this.#revocations.notBefore(principal);
    // Equal counts as revoked: not-before is the first second a new token may carry.
    if (principal.issuedAt < notBefore) {
      throw new SluiceError('TOKEN_REVOKED', { headers: { 'www-authenticate': 'Bearer error="invalid_token"' } });
    }
    return principal;
  }

  async #identify(creds: PresentedCredentials): Promise<Principal> {
    let bearer: string | undefined;
    if (creds.authorization !== undefined) {
      const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(creds.authorization.slice(0, MAX_CREDENTIAL_CHARS + 16));
      if (!m) throw new SluiceError('INVALID_CREDENTIALS', { message: 'The Authorization header must be "Bearer <token>"', headers: CHALLENGE });
      bearer = m[1]!;
    }
    if (bearer !== undefined && creds.apiKey !== undefined) {
      throw new SluiceError('INVALID_CREDENTIALS', { message: 'Send either Authorization or X-API-Key, not both', headers: CHALLENGE });
    }
    const presented = bearer ?? creds.apiKey;
    if (presented === undefined || presented === '') throw new SluiceError('AUTH_REQUIRED', { headers: CHALLENGE });
    if (presented.length > MAX_CREDENTIAL_CHARS) throw new SluiceError('INVALID_CREDENTIALS', { headers: CHALLENGE });

    if (bearer !== undefined && looksLikeJwt(bearer) && this.#jwt.enabled) return this.#jwt.verify(bearer);
    const principal = this.#keys.size > 0 ? this.#keys.verify(presented) : undefined;
    if (!principal) throw new SluiceError('INVALID_CREDENTIALS', { headers: CHALLENGE });
    return principal;
  }
}
