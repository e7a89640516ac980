// Small zod helpers shared by the inventory and playbook schemas.
import type {z} from 'zod'

/** Add an issue for every item whose key was seen before. */
export function refineUnique<T>(
  ctx: z.RefinementCtx,
  items: readonly T[],
  key: (item: T) => string,
  path: (i: number) => (string | number)[],
  what: string,
): void {
  const seen = new Set<string>()
  items.forEach((item, i) => {
    const k = key(item)
    if (seen.has(k)) ctx.addIssue({code: 'custom', path: path(i), message: `duplicate ${what} "${k}"`})
    seen.add(k)
  })
}
