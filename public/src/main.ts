// The upload page: Uppy's Dashboard (drag and drop, many files, per-file
// progress, pause/resume) uploading over tus to /v1/uploads, and the
// tenant's files listed from /v1/files. A token, when auth is on, is kept in
// localStorage and sent as a Bearer token on every request.

import Uppy from '@uppy/core';
import Dashboard from '@uppy/dashboard';
import Tus from '@uppy/tus';
import '@uppy/core/css/style.min.css';
import '@uppy/dashboard/css/style.min.css';
import './page.css';

interface FileView {
  id: string;
  name: string;
  size: number;
  type: { mime: string; ext: string };
  createdAt: string;
  links: { self: string; content: string; thumbnail?: string };
}

const MiB = 1024 * 1024;
/** Originals up to this size stand in for a thumbnail when the file has none. */
const INLINE_PREVIEW_BYTES = 2 * MiB;

const tokenInput = document.querySelector<HTMLInputElement>('#token')!;
tokenInput.value = localStorage.getItem('sluice.token') ?? '';
tokenInput.addEventListener('change', () => {
  localStorage.setItem('sluice.token', tokenInput.value.trim());
  void refresh();
});
const authHeaders = (): Record<string, string> => (tokenInput.value.trim() ? { authorization: `Bearer ${tokenInput.value.trim()}` } : {});

const uppy = new Uppy({ autoProceed: false })
  .use(Dashboard, {
    inline: true,
    target: '#uploader',
    width: '100%',
    height: 380,
    hideProgressDetails: false,
    proudlyDisplayPoweredByUppy: false,
    note: 'Uploads resume where they stopped if the connection drops.',
  })
  .use(Tus, {
    endpoint: '/v1/uploads',
    // Bounded PATCHes: a drop costs at most one chunk on S3, where whole parts are kept.
    chunkSize: 8 * MiB,
    retryDelays: [0, 1000, 2000, 4000, 8000, 15000],
    removeFingerprintOnSuccess: true,
    limit: 3,
    headers: () => authHeaders(),
  });
uppy.on('upload-success', () => void refresh());
// A refusal (type, size, expiry …) is JSON with a code: show its message, not tus-js-client's wrapper text.
uppy.on('upload-error', (file, error) => {
  const body = (error as { originalResponse?: { getBody(): string } | null }).originalResponse?.getBody();
  let refusal: { code?: string; message?: string } | undefined;
  try {
    refusal = body ? (JSON.parse(body) as { error?: { code?: string; message?: string } }).error : undefined;
  } catch {
    // not one of our answers (a proxy's page): keep Uppy's own text
  }
  if (!file || !refusal?.message) return;
  uppy.setFileState(file.id, { error: `${refusal.message} (${refusal.code ?? 'error'})` });
  uppy.info(`${file.name}: ${refusal.message}`, 'error', 10_000);
});

const tbody = document.querySelector<HTMLTableSectionElement>('#files tbody')!;
const status = document.querySelector<HTMLParagraphElement>('#files-status')!;
document.querySelector('#refresh')!.addEventListener('click', () => void refresh());

async function refresh(): Promise<void> {
  try {
    const res = await fetch('/v1/files?limit=200', { headers: authHeaders() });
    if (!res.ok) {
      const body = (await res.json().catch(() => null)) as { error?: { message?: string } } | null;
      status.textContent = body?.error?.message ?? `Could not list files (${res.status})`;
      return;
    }
    const { files } = (await res.json()) as { files: FileView[] };
    files.reverse(); // newest first
    status.textContent = files.length === 0 ? 'No files yet.' : `${files.length} file${files.length === 1 ? '' : 's'}`;
    tbody.replaceChildren(...files.map(row));
  } catch (err) {
    status.textContent = `Could not list files: ${String(err)}`;
  }
}

function row(f: FileView): HTMLTableRowElement {
  const tr = document.createElement('tr');
  tr.dataset.id = f.id;
  const thumb = cell('', 'thumb');
  const preview = f.links.thumbnail ?? (f.type.mime.startsWith('image/') && f.type.mime !== 'image/svg+xml' && f.size <= INLINE_PREVIEW_BYTES ? f.links.content : undefined);
  if (preview) void attachImage(thumb, preview, f.name);
  const link = document.createElement('a');
  link.textContent = 'Download';
  link.href = `${f.links.content}?download=1`;
  link.addEventListener('click', (e) => {
    if (!authHeaders().authorization) return; // a plain link works without auth
    e.preventDefault();
    void downloadWithToken(f);
  });
  const actions = cell('');
  actions.append(link);
  tr.append(thumb, cell(f.name, 'name'), cell(f.type.mime), cell(formatBytes(f.size), 'num'), cell(new Date(f.createdAt).toLocaleString()), actions);
  return tr;
}

function cell(text: string, className?: string): HTMLTableCellElement {
  const td = document.createElement('td');
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

async function attachImage(td: HTMLTableCellElement, url: string, alt: string): Promise<void> {
  const img = document.createElement('img');
  img.alt = alt;
  img.loading = 'lazy';
  if (authHeaders().authorization) {
    // <img> cannot send a header: fetch it with the token instead.
    const res = await fetch(url, { headers: authHeaders() });
    if (!res.ok) return;
    img.src = URL.createObjectURL(await res.blob());
  } else {
    img.src = url;
  }
  td.append(img);
}

async function downloadWithToken(f: FileView): Promise<void> {
  const res = await fetch(`${f.links.content}?download=1`, { headers: authHeaders() });
  if (!res.ok) return;
  const a = document.createElement('a');
  a.href = URL.createObjectURL(await res.blob());
  a.download = f.name;
  a.click();
  setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
}

function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${i === 0 ? n : n.toFixed(1)} ${units[i]}`;
}

void refresh();
