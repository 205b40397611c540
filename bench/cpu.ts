/**
 * CPU time of a process, read from /proc/<pid>/stat. utime + stime (fields 14 and 15) cover every
 * thread of the process (the event loop, V8's GC and compiler threads, libuv's pool), so a
 * proxy's whole cost per request is counted, not only its event loop's.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

// The kernel counts in clock ticks (USER_HZ: nearly always 100, i.e. 10 ms); ask instead of assuming.
const TICKS_PER_SECOND = ticksPerSecond();

function ticksPerSecond(): number {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
}

/** CPU time a process (all its threads) has used so far, in µs, at the kernel's tick resolution. */
export function cpuMicros(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Field 2, the command name, is in parentheses and may hold spaces: count from the last ')'.
  // What follows starts at field 3, so utime (14) and stime (15) are the 12th and 13th there.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]);
  if (!Number.isFinite(ticks)) throw new Error(`unexpected /proc/${pid}/stat: ${stat}`);
  return (ticks * 1e6) / TICKS_PER_SECOND;
}
