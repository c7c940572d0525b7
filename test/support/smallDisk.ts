/**
 * A small filesystem of its own under a server's store (a tmpfs mounted on the
 * directory before the server starts), which a fault fills to the last byte and
 * frees again: the server's writes then fail with ENOSPC, as on a disk that filled
 * up. Needs root (mount); `available` says why not. Unmounted on close (the store's
 * files on it go with it).
 */
import { execFile, spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

const FILLER = 'disk-filler';

export class SmallDisk {
  private mounted: string | undefined;

  private constructor(
    readonly bytes: number,
    readonly available: true | string,
  ) {}

  static open(bytes: number): SmallDisk {
    if (process.getuid?.() !== 0) return new SmallDisk(bytes, 'not root (mount needs it)');
    return new SmallDisk(bytes, true);
  }

  /** Mounts it on `dir` (made and empty). */
  async mount(dir: string): Promise<void> {
    if (this.available !== true) throw new Error(`no small disk here: ${this.available}`);
    await run('mount', ['-t', 'tmpfs', '-o', `size=${this.bytes},mode=0700`, 'tmpfs', dir], {
      timeout: 10_000,
    });
    this.mounted = dir;
    // A harness that dies before close() must not leave the mount behind.
    process.once('exit', () => {
      if (this.mounted === dir) spawnSync('umount', ['-l', dir], { timeout: 5000 });
    });
  }

  get dir(): string | undefined {
    return this.mounted;
  }

  /**
   * Fills it to the last byte with one file (written until ENOSPC, in large
   * blocks, then in pages: a server writing meanwhile takes its share); returns
   * the bytes it took.
   */
  async fill(): Promise<number> {
    if (!this.mounted) throw new Error('the small disk is not mounted');
    const file = await open(join(this.mounted, FILLER), 'a');
    let written = 0;
    try {
      for (const size of [4 * 1024 * 1024, 4096]) {
        const block = Buffer.alloc(size);
        for (;;) {
          try {
            written += (await file.write(block)).bytesWritten;
          } catch (err) {
            if ((err as NodeJS.ErrnoException).code === 'ENOSPC') break;
            throw err;
          }
        }
      }
    } finally {
      await file.close();
    }
    return written;
  }

  /** Frees what `fill` took. */
  empty(): void {
    if (this.mounted) rmSync(join(this.mounted, FILLER), { force: true });
  }

  /** Unmounts it (lazily: a server that still holds files there lets go when it ends). */
  async close(): Promise<void> {
    const dir = this.mounted;
    this.mounted = undefined;
    if (dir) await run('umount', ['-l', dir], { timeout: 10_000 }).catch(() => undefined);
  }
}
