// The public JSON shape of a file, built from its manifest.

import type { Manifest } from '../core/manifest.ts';

export interface FileView {
  id: string;
  name: string;
  /** Relative path (the name for files uploaded without one). */
  path: string;
  size: number;
  sha256: string;
  type: { mime: string; ext: string };
  createdAt: string;
  links: { self: string; content: string };
}

export function fileLinks(id: string): FileView['links'] {
  return { self: `/v1/files/${id}`, content: `/v1/files/${id}/content` };
}

export function fileView(m: Manifest): FileView {
  return { id: m.id, name: m.name, path: m.path ?? m.name, size: m.size, sha256: m.sha256, type: m.type, createdAt: m.createdAt, links: fileLinks(m.id) };
}

export const fileViewSchema = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    name: { type: 'string' },
    path: { type: 'string' },
    size: { type: 'integer' },
    sha256: { type: 'string' },
    type: { type: 'object', properties: { mime: { type: 'string' }, ext: { type: 'string' } } },
    createdAt: { type: 'string' },
    links: { type: 'object', properties: { self: { type: 'string' }, content: { type: 'string' } } },
  },
} as const;

export const errorBodySchema = {
  type: 'object',
  properties: {
    error: {
      type: 'object',
      properties: { code: { type: 'string' }, message: { type: 'string' }, requestId: { type: 'string' }, details: { type: 'object', additionalProperties: true } },
    },
  },
} as const;
