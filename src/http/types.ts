// Request decorations shared by plugins and routes.

declare module 'fastify' {
  interface FastifyRequest {
    /** The tenant the request acts for; set by authentication, DEFAULT_TENANT when auth is off. */
    tenant: string;
  }
  interface FastifyContextConfig {
    /** The route sends 100 Continue itself, after its admission checks. */
    deferContinue?: boolean;
    /** Scope a token needs for this route (files:read, files:write, files:delete, admin); checked by auth. */
    scope?: string;
    /** false: the load shedder never refuses this route (/health, /metrics). */
    shed?: boolean;
  }
}

export {};
