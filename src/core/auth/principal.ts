// Who a request acts as, once its token or API key has been verified.

import type { Scope } from './scopes.ts';

export interface Principal {
  /** `sub` of a JWT, or `apikey:<id>` for an API key. Revocable. */
  subject: string;
  /** Validated with isTenant(); every storage key of the request lives under it. */
  tenant: string;
  scopes: ReadonlySet<Scope>;
  /** Issue time in seconds since the epoch (JWT `iat`, API key `createdAt`); 0 when unknown. */
  issuedAt: number;
  kind: 'jwt' | 'api-key';
}

/** Credentials as the client presented them; plain values, no HTTP types. */
export interface PresentedCredentials {
  /** The Authorization header, if any. */
  authorization: string | undefined;
  /** The X-API-Key header, if any. */
  apiKey: string | undefined;
}
