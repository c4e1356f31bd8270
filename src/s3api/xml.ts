// The XML documents of the S3 protocol: error documents and the results of
// the operations served (docs/s3-api.md). Built and parsed with the AWS SDK's
// own XML code (@aws-sdk/xml-builder), which escapes every text node.

import { parseXML, XmlNode } from '@aws-sdk/xml-builder';
import type { S3Error } from './errors.ts';

const NS = 'http://s3.amazonaws.com/doc/2006-03-01/';
const DECL = '<?xml version="1.0" encoding="UTF-8"?>\n';

function doc(root: XmlNode): string {
  return DECL + root.toString();
}

function leaf(name: string, value: string | number | boolean): XmlNode {
  return XmlNode.of(name, String(value));
}

export function errorXml(err: S3Error, resource: string, requestId: string): string {
  const root = new XmlNode('Error').c(leaf('Code', err.s3Code)).c(leaf('Message', err.message)).c(leaf('Resource', resource)).c(leaf('RequestId', requestId));
  if (err.sluiceCode) root.c(leaf('SluiceCode', err.sluiceCode));
  return doc(root);
}

export interface ListedObject {
  key: string;
  lastModified: string;
  etag: string;
  size: number;
}

export function listObjectsV2Xml(r: {
  bucket: string;
  prefix: string;
  delimiter: string | undefined;
  maxKeys: number;
  objects: ListedObject[];
  commonPrefixes: string[];
  truncated: boolean;
  continuationToken: string | undefined;
  nextContinuationToken: string | undefined;
  startAfter: string | undefined;
  encodeUrl: boolean;
  /** ListObjects (V1): Marker and NextMarker instead of the V2 fields. */
  v1?: { marker: string; nextMarker: string | undefined } | undefined;
}): string {
  const enc = (s: string) => (r.encodeUrl ? encodeURIComponent(s).replace(/%2F/g, '/') : s);
  const root = new XmlNode('ListBucketResult').a('xmlns', NS).c(leaf('Name', r.bucket)).c(leaf('Prefix', enc(r.prefix)));
  if (r.delimiter !== undefined) root.c(leaf('Delimiter', enc(r.delimiter)));
  if (r.v1) {
    root.c(leaf('Marker', enc(r.v1.marker)));
    if (r.v1.nextMarker !== undefined) root.c(leaf('NextMarker', enc(r.v1.nextMarker)));
  }
  root.c(leaf('MaxKeys', r.maxKeys));
  if (!r.v1) root.c(leaf('KeyCount', r.objects.length + r.commonPrefixes.length));
  root.c(leaf('IsTruncated', r.truncated));
  if (r.encodeUrl) root.c(leaf('EncodingType', 'url'));
  if (r.continuationToken !== undefined) root.c(leaf('ContinuationToken', r.continuationToken));
  if (r.nextContinuationToken !== undefined) root.c(leaf('NextContinuationToken', r.nextContinuationToken));
  if (r.startAfter !== undefined) root.c(leaf('StartAfter', enc(r.startAfter)));
  for (const o of r.objects) {
    root.c(
      new XmlNode('Contents')
        .c(leaf('Key', enc(o.key)))
        .c(leaf('LastModified', o.lastModified))
        .c(leaf('ETag', o.etag))
        .c(leaf('Size', o.size))
        .c(leaf('StorageClass', 'STANDARD')),
    );
  }
  for (const p of r.commonPrefixes) root.c(new XmlNode('CommonPrefixes').c(leaf('Prefix', enc(p))));
  return doc(root);
}

export function initiateMultipartXml(bucket: string, key: string, uploadId: string): string {
  return doc(new XmlNode('InitiateMultipartUploadResult').a('xmlns', NS).c(leaf('Bucket', bucket)).c(leaf('Key', key)).c(leaf('UploadId', uploadId)));
}

export function completeMultipartXml(location: string, bucket: string, key: string, etag: string): string {
  return doc(
    new XmlNode('CompleteMultipartUploadResult').a('xmlns', NS).c(leaf('Location', location)).c(leaf('Bucket', bucket)).c(leaf('Key', key)).c(leaf('ETag', etag)),
  );
}

export interface ListedPart {
  partNumber: number;
  lastModified: string;
  etag: string;
  size: number;
}

export function listPartsXml(r: { bucket: string; key: string; uploadId: string; parts: ListedPart[]; maxParts: number; marker: number; truncated: boolean }): string {
  const root = new XmlNode('ListPartsResult')
    .a('xmlns', NS)
    .c(leaf('Bucket', r.bucket))
    .c(leaf('Key', r.key))
    .c(leaf('UploadId', r.uploadId))
    .c(leaf('PartNumberMarker', r.marker))
    .c(leaf('MaxParts', r.maxParts))
    .c(leaf('IsTruncated', r.truncated))
    .c(leaf('StorageClass', 'STANDARD'));
  if (r.truncated && r.parts.length > 0) root.c(leaf('NextPartNumberMarker', r.parts.at(-1)!.partNumber));
  for (const p of r.parts) {
    root.c(new XmlNode('Part').c(leaf('PartNumber', p.partNumber)).c(leaf('LastModified', p.lastModified)).c(leaf('ETag', p.etag)).c(leaf('Size', p.size)));
  }
  return doc(root);
}

/** The parts a CompleteMultipartUpload body lists, in the order given; undefined when it is not that document. */
export function parseCompleteMultipart(body: string): { partNumber: number; etag: string }[] | undefined {
  let parsed: unknown;
  try {
    parsed = parseXML(body);
  } catch {
    return undefined;
  }
  const root = (parsed as { CompleteMultipartUpload?: { Part?: unknown } } | null)?.CompleteMultipartUpload;
  if (!root || typeof root !== 'object') return undefined;
  const raw = root.Part === undefined ? [] : Array.isArray(root.Part) ? root.Part : [root.Part];
  const parts: { partNumber: number; etag: string }[] = [];
  for (const p of raw as { PartNumber?: unknown; ETag?: unknown }[]) {
    if (typeof p?.PartNumber !== 'string' || !/^\d{1,5}$/.test(p.PartNumber) || typeof p.ETag !== 'string') return undefined;
    parts.push({ partNumber: Number(p.PartNumber), etag: p.ETag.trim() });
  }
  return parts;
}
