// What a token or API key may do. Routes name the scope they need; auth checks it.

export const SCOPES = ['files:read', 'files:write', 'files:delete', 'admin'] as const;
export type Scope = (typeof SCOPES)[number];

export function isScope(s: unknown): s is Scope {
  return typeof s === 'string' && (SCOPES as readonly string[]).includes(s);
}
