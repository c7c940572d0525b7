/**
 * Open-loop arrivals: items offered at `rate` per second with random
 * (exponential) gaps, whatever the system under test does with them; each arrival
 * is the next item of a sequence drawn at random (a seeded shuffle of all items
 * that keeps each sequence's order, e.g. one VPC's intents). With `max` every item
 * arrives at once. `send` is called at each arrival with its scheduled time
 * (performance.now() clock): a send later than that is the sender's own lag.
 */
export async function offerOpenLoop<T>(
  rate: number | 'max',
  sequences: ReadonlyArray<readonly T[]>,
  send: (item: T, arrival: number) => void,
  seed = 0x9e3779b9,
): Promise<void> {
  let state = seed >>> 0;
  const random = (): number => {
    state = (Math.imul(state ^ (state >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0;
    return state / 2 ** 32;
  };
  const order = sequences.flatMap((list) => list.map(() => list));
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  const cursor = new Map<readonly T[], number>();
  let at = performance.now();
  for (const list of order) {
    const k = cursor.get(list) ?? 0;
    cursor.set(list, k + 1);
    if (rate !== 'max') {
      at += -Math.log(1 - random()) * (1000 / rate);
      const wait = at - performance.now();
      if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    }
    send(list[k]!, rate === 'max' ? performance.now() : at);
  }
}

/** Items grouped by a key, each group in the order given. */
export function sequencesBy<T>(items: readonly T[], key: (item: T) => string): T[][] {
  const by = new Map<string, T[]>();
  for (const item of items) {
    const list = by.get(key(item));
    if (list) list.push(item);
    else by.set(key(item), [item]);
  }
  return [...by.values()];
}
