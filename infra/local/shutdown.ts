/**
 * Runs `cleanup` once on SIGINT/SIGTERM (Ctrl-C), then exits with 128+signal.
 * Entry points (test runner, demo, services) call it so servers they started are
 * always stopped; a second Ctrl-C exits at once.
 */
export function onShutdown(cleanup: (signal: 'SIGINT' | 'SIGTERM') => Promise<void>): void {
  let stopping = false;
  const handler = (signal: 'SIGINT' | 'SIGTERM'): void => {
    if (stopping) process.exit(signal === 'SIGINT' ? 130 : 143);
    stopping = true;
    void cleanup(signal)
      .catch(() => undefined)
      .finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
  };
  process.on('SIGINT', () => handler('SIGINT'));
  process.on('SIGTERM', () => handler('SIGTERM'));
}
