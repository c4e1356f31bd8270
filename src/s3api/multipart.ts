import type { FastifyReply, FastifyRequest } from 'fastify';
import type { AppDeps } from '../http/types.ts';
import { S3Error } from './errors.ts';
import type { ObjectOperations, S3Target } from './objects.ts';

export class MultipartOperations {
  constructor(_deps: AppDeps, _objects: ObjectOperations) {}
  uploadPart(_r: FastifyRequest, _reply: FastifyReply, _t: S3Target): Promise<FastifyReply> { throw new S3Error('NotImplemented', 'not yet'); }
  listParts(_r: FastifyRequest, _reply: FastifyReply, _t: S3Target): Promise<FastifyReply> { throw new S3Error('NotImplemented', 'not yet'); }
  abort(_r: FastifyRequest, _reply: FastifyReply, _t: S3Target): Promise<FastifyReply> { throw new S3Error('NotImplemented', 'not yet'); }
  create(_r: FastifyRequest, _reply: FastifyReply, _t: S3Target): Promise<FastifyReply> { throw new S3Error('NotImplemented', 'not yet'); }
  complete(_r: FastifyRequest, _reply: FastifyReply, _t: S3Target): Promise<FastifyReply> { throw new S3Error('NotImplemented', 'not yet'); }
}
