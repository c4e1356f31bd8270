// GET|HEAD /v1/links/:tenant/:id?expires=&sig= — a signed link's download. No
// token: the signature is the credential, checked before the file is looked
// up. Served like /content (Range, ETag, nosniff, attachment for script types).

import type { FastifyInstance } from 'fastify';
import { verifyLink } from '../../core/auth/signed-links.ts';
import { readManifest } from '../../core/files.ts';
import { originalOf, sendObject } from '../send-object.ts';
import type { RouteOptions } from './index.ts';

export async function getLinkRoute(app: FastifyInstance, { deps }: RouteOptions): Promise<void> {
  const secret = deps.config.security.links.secret;
  app.route<{ Params: { tenant: string; id: string }; Querystring: { expires?: string; sig?: string; download?: string } }>({
    method: ['GET', 'HEAD'],
    url: '/v1/links/:tenant/:id',
    exposeHeadRoute: false,
    config: { public: true },
    handler: async (request, reply) => {
      const q = request.query;
      const target = verifyLink(secret, { tenant: request.params.tenant, id: request.params.id, expires: str(q.expires), sig: str(q.sig) });
      const m = await readManifest(deps.storage, deps.config.keyPrefix, target.tenant, target.id);
      reply.header('referrer-policy', 'no-referrer');
      return sendObject(request, reply, deps.storage, originalOf(m));
    },
  });
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}
