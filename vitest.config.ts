import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Integration tests start real processes on a 2-core machine that may be running another
    // suite at the same time: a process start alone has taken over 12 s there. These bounds only
    // stop a test that waits for something that never comes; no test relies on them to pass.
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // expect.poll waits for an event (a counter moving, a log line written); its default 1 s bound
    // is shorter than a busy machine can take to get there.
    expect: { poll: { timeout: 30_000 } },
    pool: 'forks',
    maxWorkers: 2,
  },
});
