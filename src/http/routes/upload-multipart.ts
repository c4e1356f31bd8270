// POST /v1/files — multipart/form-data with one or more file parts.
// All or nothing: files are staged one after another as they arrive, and
// committed (manifests written) only when the whole request succeeded.

import type { FastifyInstance } from 'fastify';
import { SluiceError } from '../../errors.ts';
import { commitFiles, discardStaged, stageFile, type StagedFile } from '../../core/ingest.ts';
import { sanitizeFileName } from '../../core/names.ts';
import { parseSha256 } from '../digest-header.ts';
import { fileView } from '../file-view.ts';
import { declaredPartType, isMultipart, multipartFiles } from '../multipart.ts';
import { admitUpload } from '../upload-admission.ts';
import type { RouteOptions } from './index.ts';
import { parseProcess } from '../../core/jobs.ts';
import { processQuery } from '../process-query.ts';
import { parsePath } from '../../core/paths.ts';
import type { SluiceMetrics } from '../../metrics.ts';

export async function uploadMultipartRoute(app: FastifyInstance, { deps }: RouteOptions): Promise<void> {
  const { config } = deps;
  /** An invalid process field fails the request; drain its part first, or its stream errors with no listener. */
  const parsePartProcess = (stream: NodeJS.ReadableStream, raw: string) => {
    try {
      return parseProcess(raw, config);
    } catch (err) {
      stream.on('error', () => {}).resume();
      throw err;
    }
  };
  const partPath = (stream: NodeJS.ReadableStream, raw: string) => {
    try {
      return parsePath(raw);
    } catch (err) {
      stream.on('error', () => {}).resume();
      throw err;
    }
  };
  app.post('/v1/files', { config: { deferContinue: true, scope: 'files:write' } }, async (request, reply) => {
    if (!isMultipart(request.headers['content-type'])) throw new SluiceError('UNSUPPORTED_CONTENT_TYPE', { message: 'POST /v1/files takes multipart/form-data; use PUT /v1/files/:name for a raw body' });
    const started = performance.now();
    const queryProcess = processQuery(request, config); // refuse an unknown job before reading the body
    const admission = await admitUpload(request, reply, deps, { maxBytes: config.limits.requestBytes, tooLarge: 'REQUEST_TOO_LARGE' });
    const staged: StagedFile[] = [];
    const log = request.log;
    const ingestDeps = { config, storage: deps.storage, log, jobs: deps.jobs };
    try {
      for await (const part of multipartFiles(request.raw, config.limits, admission.signal)) {
        const sha = part.fields.get(`${part.field}.sha256`) ?? part.fields.get('sha256');
        const processField = part.fields.get(`${part.field}.process`) ?? part.fields.get('process');
        const pathField = part.fields.get(`${part.field}.path`) ?? part.fields.get('path');
        staged.push(
          await stageFile(ingestDeps, {
            process: processField === undefined ? queryProcess : parsePartProcess(part.stream, processField),
            tenant: request.tenant,
            name: sanitizeFileName(part.filename),
            path: pathField === undefined ? undefined : partPath(part.stream, pathField),
            source: part.stream,
            declaredType: declaredPartType(part),
            expectedSha256: sha === undefined ? undefined : parseSha256(sha),
            signal: admission.signal,
          }),
        );
      }
      if (staged.length === 0) throw new SluiceError('NO_FILE');
      await commitFiles(ingestDeps, staged);
    } catch (err) {
      await discardStaged(ingestDeps, staged);
      logUpload(log, staged, started, err, { metrics: deps.metrics, route: '/v1/files' });
      throw err;
    } finally {
      admission.release();
    }
    logUpload(log, staged, started, undefined, { metrics: deps.metrics, route: '/v1/files' });
    return reply.code(201).send({ files: staged.map(fileView) });
  });
}

export function logUpload(log: FastifyInstance['log'], files: readonly StagedFile[], started: number, err?: unknown, rec?: UploadRecord): void {
  const summary = {
    files: files.length,
    bytes: files.reduce((n, f) => n + f.size, 0),
    types: files.map((f) => f.type.mime),
    ids: files.map((f) => f.id),
    durationMs: Math.round(performance.now() - started),
    outcome: err ? ((err as SluiceError).code ?? 'INTERNAL') : 'committed',
  };
  log.info({ upload: summary }, err ? 'upload failed' : 'upload committed');
  if (rec?.metrics) recordUpload(rec.metrics, rec.route, files, summary.durationMs, summary.outcome);
}

/** Where logUpload also records the upload's metrics. */
export interface UploadRecord {
  metrics: SluiceMetrics | undefined;
  route: string;
}

function recordUpload(m: SluiceMetrics, route: string, files: readonly StagedFile[], durationMs: number, outcome: string): void {
  m.uploadDuration.observe({ route, outcome }, durationMs / 1000);
  if (outcome !== 'committed') {
    m.uploadsFailed.inc({ route, reason: outcome });
    return;
  }
  m.uploadsCompleted.inc({ route });
  for (const f of files) {
    m.uploadBytes.inc(f.size);
    m.fileSize.observe(f.size);
  }
}
