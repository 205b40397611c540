/**
 * The log audit: what processes wrote must not contain any secret a test handled (raw session ids,
 * client-facing or upstream, tokens, cookies, secrets). Read the outputs only once the processes
 * have exited (Proc.stop(): the proxy flushes its logger on SIGTERM), never after a guessed delay.
 */
import { expect } from 'vitest';

/** Shorter needles could occur in a log by chance, and an empty one occurs everywhere. */
const MIN_SECRET_LENGTH = 8;

/**
 * Assert that no secret occurs in any output, and that the audit is not vacuous: there are
 * secrets to look for, every output holds log lines, and the proxy really logged session activity
 * (a session fingerprint where the raw id would be) at trace level, the most verbose one.
 */
export function expectNoSecretsInLogs(outputs: readonly string[], secrets: Iterable<string>): void {
  const needles = [...new Set(secrets)];
  expect(needles.length, 'no secrets to look for').not.toBe(0);
  for (const needle of needles) {
    expect(needle.length, `a secret shorter than ${MIN_SECRET_LENGTH} characters`).toBeGreaterThanOrEqual(MIN_SECRET_LENGTH);
  }
  expect(outputs.length, 'no outputs to audit').not.toBe(0);
  const lines: Record<string, unknown>[] = [];
  outputs.forEach((output, i) => {
    const parsed = output.split('\n').flatMap((line) => {
      try {
        return [JSON.parse(line) as Record<string, unknown>];
      } catch {
        return [];
      }
    });
    expect(parsed.length, `output ${i} holds no log line`).not.toBe(0);
    lines.push(...parsed);
  });
  expect(
    lines.some((l) => l.level === 10),
    'no trace line: the audit would miss the most verbose level',
  ).toBe(true);
  expect(
    lines.some((l) => typeof l.sid === 'string' && /^fp:[0-9a-f]{12}$/.test(l.sid)),
    'no session fingerprint: the processes logged no session activity',
  ).toBe(true);

  const text = outputs.join('\n');
  for (const needle of needles) {
    expect(text.includes(needle), `a secret (${needle.slice(0, 4)}…) reached the logs`).toBe(false);
  }
}
