// The `?process=` query parameter of the upload routes: which jobs
// to run, validated before the body is read. Repeated parameters are joined.

import type { FastifyRequest } from 'fastify';
import { parseProcess } from '../core/jobs.ts';
import type { Config } from '../config.ts';

export function processQuery(request: FastifyRequest, config: Readonly<Config>): readonly string[] | undefined {
  const raw = (request.query as Record<string, string | string[] | undefined> | undefined)?.process;
  return parseProcess(Array.isArray(raw) ? raw.join(',') : raw, config);
}
