// CPU time of a process tree from /proc (Linux only). A benchmark of a server that shares the machine
// with its load generator must charge each side its own CPU: wrangler dev is a node process with
// workerd and esbuild children, and the work we want to measure happens in workerd.
import { readdirSync, readFileSync } from 'node:fs';

const TICKS_PER_SEC = 100; // USER_HZ; Linux reports /proc times in these on every common platform

/** Reads pid, comm, ppid, utime+stime (ticks) of every process, skipping those that vanish mid-read. */
function allProcesses() {
  const out = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let stat;
    try {
      stat = readFileSync(`/proc/${name}/stat`, 'utf8');
    } catch {
      continue;
    }
    // comm is in parentheses and may hold spaces or ')': the fields start after the last ')'.
    const close = stat.lastIndexOf(')');
    const comm = stat.slice(stat.indexOf('(') + 1, close);
    const f = stat.slice(close + 2).split(' ');
    // f[0] is field 3 (state): ppid is field 4, utime 14, stime 15.
    out.push({ pid: Number(name), comm, ppid: Number(f[1]), ticks: Number(f[11]) + Number(f[12]) });
  }
  return out;
}

/**
 * A snapshot of the CPU time of `rootPid` and all its descendants.
 * @returns {Map<number, { comm: string, ticks: number }>}
 */
export function treeCpu(rootPid) {
  const procs = allProcesses();
  const children = new Map();
  for (const p of procs) {
    if (!children.has(p.ppid)) children.set(p.ppid, []);
    children.get(p.ppid).push(p);
  }
  const tree = new Map();
  const root = procs.find((p) => p.pid === rootPid);
  const todo = root ? [root] : [];
  while (todo.length > 0) {
    const p = todo.pop();
    tree.set(p.pid, { comm: p.comm, ticks: p.ticks });
    for (const c of children.get(p.pid) ?? []) todo.push(c);
  }
  return tree;
}

/**
 * CPU seconds spent between two snapshots, in total and per process (keyed `comm#pid`). A process
 * born in between counts from zero; one that died in between is lost (its time is not in /proc).
 */
export function cpuDelta(before, after) {
  const byProcess = {};
  let total = 0;
  for (const [pid, a] of after) {
    const d = (a.ticks - (before.get(pid)?.ticks ?? 0)) / TICKS_PER_SEC;
    byProcess[`${a.comm}#${pid}`] = d;
    total += d;
  }
  return { total, byProcess };
}

/** Busy and total CPU seconds of the whole machine (all cores), from /proc/stat. */
export function machineCpu() {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0];
  // user nice system idle iowait irq softirq steal; guest time is already inside user.
  const v = line.trim().split(/\s+/).slice(1, 9).map(Number);
  const idle = v[3] + (v[4] ?? 0); // idle + iowait
  const total = v.reduce((a, b) => a + b, 0);
  return { busy: (total - idle) / TICKS_PER_SEC, total: total / TICKS_PER_SEC };
}

/** The command line of a process, arguments joined by spaces ('' once it is gone). */
export function cmdline(pid) {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
  } catch {
    return '';
  }
}
