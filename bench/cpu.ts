/**
 * CPU time of a process, every thread of it (the event loop, V8's GC and compiler threads, libuv's
 * pool, worker threads), so that a proxy's whole cost per request is counted, not only its event
 * loop's.
 *
 * Read from each thread's /proc/<pid>/task/<tid>/schedstat (time on a CPU, in ns), so that short
 * blocks of calls can be told apart: /proc/<pid>/stat counts in clock ticks (10 ms), a few percent
 * of a 2000-call block, and a block long enough to hide that lets the machine's speed drift
 * between the two sides of one comparison. Where schedstat is missing, /proc/<pid>/stat it is.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';

// The kernel counts in clock ticks (USER_HZ: nearly always 100, i.e. 10 ms); ask instead of assuming.
const TICKS_PER_SECOND = ticksPerSecond();

function ticksPerSecond(): number {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
}

/** CPU time a process (all its threads) has used so far, in µs. */
export function cpuMicros(pid: number): number {
  return existsSync(`/proc/${pid}/schedstat`) ? scheduledMicros(pid) : tickMicros(pid);
}

/** The sum of the threads' time on a CPU. A thread that ended between two readings takes its time with it: Node's threads live as long as the process. */
function scheduledMicros(pid: number): number {
  let ns = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ', 1)[0]);
    } catch {
      // The thread ended while we read.
    }
  }
  if (!Number.isFinite(ns)) throw new Error(`unexpected /proc/${pid}/task/*/schedstat`);
  return ns / 1000;
}

function tickMicros(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Field 2, the command name, is in parentheses and may hold spaces: count from the last ')'.
  // What follows starts at field 3, so utime (14) and stime (15) are the 12th and 13th there.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]);
  if (!Number.isFinite(ticks)) throw new Error(`unexpected /proc/${pid}/stat: ${stat}`);
  return (ticks * 1e6) / TICKS_PER_SECOND;
}
