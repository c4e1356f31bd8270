// How big each part of a multipart upload is, so that any file up to
// SLUICE_MAX_FILE_BYTES fits in the store's part count (10,000 on S3, 1,000 on
// Scaleway) without holding more memory than small files need.
//
//   - Length known up front (a raw PUT's Content-Length): every part the same
//     size, max(part size, length / max parts), which also suits R2.
//   - Length unknown, equal parts required (R2): every part max(part size,
//     max file bytes / max parts), fixed before the first byte.
//   - Length unknown otherwise: when part size × max parts already holds the
//     largest file, every part is the part size. Else the first half of the
//     parts use the part size and the rest grow to what the largest file then
//     needs, ⌈(max − half × part size) / (max parts − half)⌉. Files up to
//     half × part size (40 GiB at 8 MiB × 10,000) never see a grown part.
//
// Memory bound: `largest` × (queue size + 1) per upload. For the unknown-length
// plan, largest ≤ 2 × max file bytes / max parts (and never below the part
// size); the known-length plans are never larger than that, so the
// unknown-length bound is the one the buffer budget reserves.

export interface PartRules {
  maxParts: number;
  maxPartSize: number;
  equalParts: boolean;
}

export interface PartPlan {
  /** Size of part `n` (1-based); every part but the last is filled to exactly this. */
  sizeOf(partNumber: number): number;
  /** The largest part the plan uses. */
  readonly largest: number;
  readonly maxParts: number;
}

const MiB = 1024 * 1024;
const roundUpMiB = (n: number) => Math.ceil(n / MiB) * MiB;

export interface PlanInput {
  partSize: number;
  rules: PartRules;
  /** The largest body the plan must hold. */
  maxFileBytes: number;
  /** The body's exact length, when known before its first byte. */
  declaredSize?: number | undefined;
}

export function planParts({ partSize, rules, maxFileBytes, declaredSize }: PlanInput): PartPlan {
  const { maxParts, maxPartSize } = rules;
  /** The smallest part size (whole MiB where the limit allows) that holds `total` in maxParts parts. */
  const holding = (total: number): number => {
    const least = Math.ceil(total / maxParts);
    if (least > maxPartSize) throw new RangeError(`${total} bytes do not fit ${maxParts} parts of at most ${maxPartSize} bytes`);
    return Math.max(partSize, Math.min(maxPartSize, roundUpMiB(least)));
  };
  const fixed = (size: number): PartPlan => ({ sizeOf: () => size, largest: size, maxParts });
  if (declaredSize !== undefined) return fixed(holding(declaredSize));
  if (partSize * maxParts >= maxFileBytes) return fixed(partSize);
  const half = Math.floor(maxParts / 2);
  const grown = roundUpMiB(Math.ceil((maxFileBytes - half * partSize) / (maxParts - half)));
  if (rules.equalParts || half === 0 || grown > maxPartSize) return fixed(holding(maxFileBytes));
  return { sizeOf: (n) => (n <= half ? partSize : grown), largest: grown, maxParts };
}

/** Whether a file of `maxFileBytes` can be stored at all under these rules. */
export function fitsParts(maxFileBytes: number, rules: PartRules): boolean {
  return maxFileBytes <= rules.maxParts * rules.maxPartSize;
}
