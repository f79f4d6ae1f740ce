import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { describeError } from '../../domain/errors.ts';
import { type ApiSpec, apiSpecSchema } from '../../domain/tool.ts';
import { log as rootLog } from '../log.ts';
import { FILES, filesHash, readVersionFiles, stamp } from './folders.ts';
import type { Registry } from './registry.ts';
import { type ManifestDraft, manifestDraftSchema } from './store.ts';

/**
 * The directory watcher: a person's edits to a tool's current version folder become a new version
 * (created by 'human') once the injected verification passes; a broken edit is set aside in
 * .rejected/ and never displaces the last good version.
 */
export type VerifyResult = { ok: true } | { ok: false; reason: string };

export type WatchEvent =
  | { kind: 'registered'; name: string; from: number; version: number }
  | { kind: 'rejected'; name: string; version: number; reason: string; savedTo: string }
  | { kind: 'error'; name?: string; error: string };

export interface WatchOptions {
  /** the sandbox verification, run on a snapshot of the edited folder before anything uses it */
  verify(dir: string): Promise<VerifyResult>;
  onChange?(event: WatchEvent): void;
  /** editors save in bursts (temp file, rename, chmod): act once the folder is quiet this long */
  debounceMs?: number;
  /** a safety net for events fs.watch misses (network filesystems, other processes' registrations) */
  rescanMs?: number;
  /**
   * false: no fs.watch at all, only the rescan (a filesystem that sends no change events); it
   * notices edits by the files' sizes and times, SIGNATURE_BATCH tools per rescan
   */
  events?: boolean;
}

/** Version folders whose files' sizes and times a rescan compares: bounded, so a large catalog costs the same per rescan. */
const SIGNATURE_BATCH = 200;

export interface RegistryWatcher {
  close(): Promise<void>;
  /** resolves when no edit is pending or being handled */
  idle(): Promise<void>;
}

export async function watchRegistry(registry: Registry, wopts: WatchOptions): Promise<RegistryWatcher> {
  const log = rootLog.child({ component: 'registry-watch' });
  const root = registry.root;
  const debounceMs = wopts.debounceMs ?? 300;
  const watchers = new Map<string, fs.FSWatcher | null>(); // key: directory; null: looked at by the rescan only
  const watchedVersion = new Map<string, number>(); // tool -> version dir being watched
  const timers = new Map<string, NodeJS.Timeout>();
  const running = new Map<string, Promise<void>>();
  /** tool -> its current folder's files' sizes and times when last handled */
  const signatures = new Map<string, string>();
  let signatureCursor = 0;
  let closed = false;

  const emit = (e: WatchEvent) => {
    try {
      wopts.onChange?.(e);
    } catch (err) {
      log.error('onChange handler threw', { error: describeError(err) });
    }
  };

  function watchDir(dir: string, onEvent: (file: string | null) => void): void {
    if (watchers.has(dir)) return;
    if (wopts.events === false) {
      if (fs.existsSync(dir)) watchers.set(dir, null);
      return;
    }
    try {
      const w = fs.watch(dir, { persistent: false }, (_type, file) => onEvent(file ? String(file) : null));
      w.on('error', () => {
        w.close();
        watchers.delete(dir);
        schedule('*rescan*', rescan);
      });
      watchers.set(dir, w);
    } catch (err) {
      log.warn('cannot watch directory', { dir, error: describeError(err) });
    }
  }

  function unwatch(dir: string): void {
    watchers.get(dir)?.close();
    watchers.delete(dir);
  }

  function schedule(key: string, fn: () => Promise<void>): void {
    if (closed) return;
    clearTimeout(timers.get(key));
    timers.set(
      key,
      setTimeout(() => {
        timers.delete(key);
        // One handler per key at a time; a burst during handling runs once more afterwards.
        const prev = running.get(key) ?? Promise.resolve();
        const next = prev.then(fn).catch((err) => emit({ kind: 'error', name: key, error: describeError(err) }));
        running.set(key, next);
        void next.finally(() => {
          if (running.get(key) === next) running.delete(key);
        });
      }, debounceMs),
    );
  }

  const known = new Set<string>(Object.values(FILES));

  async function rescan(): Promise<void> {
    if (closed) return;
    await fsp.mkdir(root, { recursive: true });
    watchDir(root, () => schedule('*rescan*', rescan));
    const tools = await registry.list();
    const listed = new Set(tools.filter((t) => t.currentVersion !== null).map((t) => t.name));
    for (const name of signatures.keys()) if (!listed.has(name)) signatures.delete(name);
    for (const tool of tools) {
      if (tool.currentVersion === null) continue;
      const name = tool.name;
      watchDir(path.join(root, name), () => schedule('*rescan*', rescan));
      const prev = watchedVersion.get(name);
      // A current version whose folder could not be watched (deleted by hand) is looked at again.
      if (prev === tool.currentVersion && watchers.has(path.join(root, name, `v${prev}`))) continue;
      if (prev !== undefined) unwatch(path.join(root, name, `v${prev}`));
      watchedVersion.set(name, tool.currentVersion);
      watchDir(path.join(root, name, `v${tool.currentVersion}`), (file) => {
        if (file === null || known.has(file)) schedule(name, () => handle(name));
      });
      // An edit made while nobody watched is still an edit.
      schedule(name, () => handle(name));
    }
    await compareSignatures();
  }

  /** The sizes and modification times of a version folder's files: changes when a file is written. */
  async function signatureOf(name: string): Promise<string> {
    const dir = path.join(root, name, `v${watchedVersion.get(name)}`);
    const parts = await Promise.all(
      Object.values(FILES).map((file) =>
        fsp.stat(path.join(dir, file)).then(
          (st) => `${file}:${st.size}:${st.mtimeMs}`,
          () => `${file}:-`,
        ),
      ),
    );
    return parts.join(' ');
  }

  /**
   * The rescan's look at folders already watched, for edits fs.watch did not report (a network
   * filesystem, a lost event): a slice of them per rescan, each whose files changed since it was
   * last handled is handled again (which compares the files' hash with the registered one).
   */
  async function compareSignatures(): Promise<void> {
    const names = [...signatures.keys()];
    if (!names.length) return;
    signatureCursor %= names.length;
    const slice = names.slice(signatureCursor, signatureCursor + SIGNATURE_BATCH);
    signatureCursor += slice.length;
    for (const name of slice)
      if (!running.has(name) && !timers.has(name) && (await signatureOf(name)) !== signatures.get(name)) schedule(name, () => handle(name));
  }

  /** handleEdit, remembering the folder as it was before it was read: a write after that is noticed by the next rescan. */
  async function handle(name: string): Promise<void> {
    const before = await signatureOf(name);
    await handleEdit(name);
    signatures.set(name, before);
  }

  async function handleEdit(name: string): Promise<void> {
    const current = await registry.getCurrent(name);
    if (!current) return;
    const record = await registry.versionRecord(name, current.version);
    if (!record) return;
    const snapshot = await readVersionFiles(current.dir);
    if (!snapshot) {
      // The folder of the version every call runs is gone (deleted by hand): calls would fail until
      // the next worker start's recover(). Put back what was registered now; retiring a tool is
      // `forge tools archive`, which keeps it in history.
      if ((await registry.repair(name, current.version)) === 'restored')
        log.warn('the current version folder was missing: restored from the catalog (to retire a tool: forge tools archive)', {
          tool: name,
          version: current.version,
        });
      // The watch on the deleted folder is dead: watch the restored one afresh.
      unwatch(path.join(root, name, `v${current.version}`));
      watchedVersion.delete(name);
      await rescan();
      return;
    }
    const snapSha = filesHash(snapshot);
    if (snapSha === record.filesSha256) return; // unchanged, or our own restore

    log.info('edit detected in a current tool version', { tool: name, version: current.version });
    await fsp.mkdir(path.join(root, '.tmp'), { recursive: true });
    const staging = await fsp.mkdtemp(path.join(root, '.tmp', `edit-${name}-`));
    try {
      for (const [file, content] of Object.entries(snapshot)) await fsp.writeFile(path.join(staging, file), content);
      const verdict = await checkEdit(snapshot, staging);
      if (verdict.ok) {
        const result = await registry.registerVersion({
          name,
          source: snapshot[FILES.source]!,
          tests: snapshot[FILES.tests] ?? '',
          manifest: verdict.manifest,
          apiSpec: verdict.apiSpec,
          createdBy: 'human',
          idempotencyKey: `human-edit:${name}:v${current.version}:${snapSha}`,
        });
        await restoreUnlessEditedAgain(name, current.version, current.dir, snapSha);
        await registry.recordAudit({
          idempotencyKey: `human-edit:${name}:v${current.version}:${snapSha}`,
          kind: 'human_edit',
          tool: name,
          version: result.version,
          input: { from: current.version, filesSha256: snapSha },
          output: { version: result.version },
        });
        emit({ kind: 'registered', name, from: current.version, version: result.version });
      } else {
        const savedTo = path.join(root, '.rejected', name, `${stamp()}-v${current.version}`);
        await fsp.mkdir(path.dirname(savedTo), { recursive: true });
        await fsp.cp(staging, savedTo, { recursive: true });
        await restoreUnlessEditedAgain(name, current.version, current.dir, snapSha);
        await registry.recordAudit({
          idempotencyKey: `human-edit-rejected:${name}:v${current.version}:${snapSha}`,
          kind: 'human_edit_rejected',
          tool: name,
          version: current.version,
          input: { filesSha256: snapSha, savedTo },
          reasoning: verdict.reason,
        });
        log.warn('edit rejected; the last good version stays current', {
          tool: name,
          version: current.version,
          reason: verdict.reason,
          savedTo,
        });
        emit({ kind: 'rejected', name, version: current.version, reason: verdict.reason, savedTo });
      }
    } finally {
      await fsp.rm(staging, { recursive: true, force: true });
    }
    await rescan();
  }

  /** The manifest must still parse, then the injected sandbox verification must pass. */
  async function checkEdit(
    snapshot: Record<string, string>,
    staging: string,
  ): Promise<{ ok: true; manifest: ManifestDraft; apiSpec?: ApiSpec } | { ok: false; reason: string }> {
    if (!snapshot[FILES.source]) return { ok: false, reason: `${FILES.source} is missing or empty` };
    let manifest: ManifestDraft;
    let apiSpec: ApiSpec | undefined;
    try {
      manifest = manifestDraftSchema.parse(JSON.parse(snapshot[FILES.manifest] ?? 'null'));
      const specText = snapshot[FILES.apiSpec];
      if (specText) apiSpec = apiSpecSchema.parse(JSON.parse(specText));
    } catch (err) {
      return { ok: false, reason: `manifest.json / api-spec.json invalid: ${describeError(err).slice(0, 500)}` };
    }
    let verdict: VerifyResult;
    try {
      verdict = await wopts.verify(staging);
    } catch (err) {
      verdict = { ok: false, reason: `verification crashed: ${describeError(err)}` };
    }
    return verdict.ok ? { ok: true, manifest, ...(apiSpec ? { apiSpec } : {}) } : verdict;
  }

  /**
   * The old version's folder goes back to what was registered, so history stays true and a broken
   * file never stays in the version being run — unless the person saved again meanwhile, in which
   * case that newer edit is handled on its own.
   */
  async function restoreUnlessEditedAgain(name: string, version: number, dir: string, snapSha: string): Promise<void> {
    const now = await readVersionFiles(dir);
    if (now && filesHash(now) !== snapSha) return;
    await registry.repair(name, version);
  }

  const onVersion = () => schedule('*rescan*', rescan);
  registry.events.on('version', onVersion);
  const poll = setInterval(() => schedule('*rescan*', rescan), wopts.rescanMs ?? 5000);
  poll.unref();
  await rescan();

  return {
    async close() {
      closed = true;
      clearInterval(poll);
      registry.events.off('version', onVersion);
      for (const t of timers.values()) clearTimeout(t);
      timers.clear();
      for (const w of watchers.values()) w?.close();
      watchers.clear();
      await Promise.allSettled([...running.values()]);
    },
    async idle() {
      // Settle until no timer is armed and no handler runs (handlers may arm new timers).
      for (let i = 0; i < 100; i++) {
        if (timers.size === 0 && running.size === 0) return;
        await Promise.allSettled([...running.values()]);
        await new Promise((r) => setTimeout(r, debounceMs + 20));
      }
    },
  };
}
