// A frozen copy of the working tree for a benchmark's wrangler dev. wrangler dev watches its sources
// and reloads the Worker (a new workerd, in-memory state gone, "Your worker restarted mid-request")
// whenever a file changes; in a tree that people (or editors) are changing, that happens mid-run.
// Benchmarking a copy taken at the start measures exactly the code as it was when the run began.
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

/**
 * Copies every tracked and untracked-but-not-ignored file of the git tree at `root` into a new temp
 * directory, with node_modules linked rather than copied.
 * @returns {{ dir: string, files: number, remove: () => void }}
 */
export function snapshotTree(root) {
  const dir = mkdtempSync(join(tmpdir(), 'keywarden-snapshot-'));
  const list = execFileSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], {
    cwd: root,
    encoding: 'utf8',
  });
  let files = 0;
  for (const rel of new Set(list.split('\0').filter(Boolean))) {
    const from = join(root, rel);
    if (!existsSync(from)) continue; // tracked but deleted in the working tree
    mkdirSync(dirname(join(dir, rel)), { recursive: true });
    copyFileSync(from, join(dir, rel));
    files++;
  }
  symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'), 'dir');
  return { dir, files, remove: () => rmSync(dir, { recursive: true, force: true }) };
}
