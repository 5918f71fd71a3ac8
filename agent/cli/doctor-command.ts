// `spotsnap doctor`: checks here and now everything a checkpoint needs, and says for each what to fix.
import { DeleteObjectsCommand, type S3Client } from '@aws-sdk/client-s3';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, readFile, statfs } from 'node:fs/promises';
import os from 'node:os';
import { execa } from 'execa';
import { CriuCli, type CriuVersion } from '../../criu-bridge/criu-cli.ts';
import { describeProblems, readConfig } from '../config/config.ts';
import { MIN_CRIU_VERSION } from '../config/criu-requirement.ts';
import { ENV_VARS } from '../config/env-vars.ts';
import { settingOrDefault } from '../config/read-env-var.ts';
import { findExecutable } from '../task/find-executable.ts';
import { restoreImagesDir, streamingRelay } from '../restore/restore.ts';
import { ImdsClient } from '../notice/imds-client.ts';
import { doctorProbeKey } from '../store/s3-layout.ts';
import { putPackObject } from '../store/snapshot-store.ts';
import { blake3Unavailable } from '../transfer/chunk-digest.ts';
import { crc32, crc32Implementation } from '../transfer/crc32.ts';

export type CheckStatus = 'ok' | 'warn' | 'fail';

export interface CheckResult {
  name: string;
  status: CheckStatus;
  detail: string;
  /** What to do about a warning or failure. */
  fix?: string;
}

/** Capabilities CRIU and the agent use, by number (linux/capability.h), and what each is for. */
export const NEEDED_CAPABILITIES: ReadonlyArray<{ bit: number; name: string; why: string }> = [
  { bit: 21, name: 'CAP_SYS_ADMIN', why: 'PID namespaces, /proc/PID/map_files, restoring PIDs' },
  { bit: 19, name: 'CAP_SYS_PTRACE', why: 'seizing the process tree' },
  { bit: 12, name: 'CAP_NET_ADMIN', why: 'TCP repair mode for open connections' },
  { bit: 1, name: 'CAP_DAC_OVERRIDE', why: 'reading and restoring files of any owner' },
  { bit: 7, name: 'CAP_SETUID', why: 'restoring credentials' },
  { bit: 6, name: 'CAP_SETGID', why: 'restoring credentials' },
  { bit: 5, name: 'CAP_KILL', why: 'stopping and resuming the tree' },
];

/** The capability numbers missing from a /proc/PID/status CapEff mask. */
export function missingCapabilities(capEffHex: string): typeof NEEDED_CAPABILITIES {
  const mask = BigInt(`0x${capEffHex}`);
  return NEEDED_CAPABILITIES.filter((c) => ((mask >> BigInt(c.bit)) & 1n) === 0n);
}

/**
 * `criu check` errors that do not stop a task's checkpoint: raising RLIMIT_NOFILE (lacking CAP_SYS_RESOURCE),
 * creating tun devices (only for tasks that use them), and a read-only ns_last_pid when clone3 sets PIDs.
 */
export function harmlessCheckError(line: string, clone3: boolean): boolean {
  return /RLIMIT_NOFILE|tun: Unable to create tun/.test(line) || (clone3 && /ns_last_pid/.test(line));
}

/**
 * Whether a task holding TCP connections can be checkpointed with this CRIU on this kernel, and what becomes of them.
 * Linux 6.16 refuses SO_PASSCRED on TCP and UDP sockets and CRIU before 4.2 reads it from every socket it dumps, so
 * there it cannot dump a task holding any such socket. In 'established' mode spotsnap's dumps, which leave the tree
 * stopped, refuse a task holding an established connection (criu-options.ts, dumpTcpArgs); `lockTool` is CRIU's
 * default network lock (iptables-restore), needed only where connection state is dumped.
 */
export function tcpCheck(criu: CriuVersion, kernelRelease: string, tcpMode: 'established' | 'close', lockTool: string | undefined): Omit<CheckResult, 'name'> {
  const [major, minor] = (/^(\d+)\.(\d+)/.exec(kernelRelease) ?? []).slice(1).map(Number);
  const passcredKernel = major !== undefined && minor !== undefined && (major > 6 || (major === 6 && minor >= 16));
  if (passcredKernel && criu.number < 40200) {
    return {
      status: 'fail',
      detail: `criu ${criu.text} cannot dump a task holding any TCP or UDP socket on Linux ${kernelRelease} (it reads SO_PASSCRED, which Linux 6.16 and later refuse on them)`,
      fix: 'install CRIU 4.2 or newer (docker/Dockerfile takes it from Debian forky where the base has an older one)',
    };
  }
  if (tcpMode === 'established') {
    return {
      status: 'warn',
      detail:
        'SPOTSNAP_TCP_MODE=established: a task holding an established TCP connection is not checkpointed (the dump leaves the tree stopped, ' +
        `and CRIU would leave its connections in repair mode); CRIU's network lock tool iptables-restore is ${lockTool ? `at ${lockTool}` : 'not installed'}`,
      fix: 'set SPOTSNAP_TCP_MODE=close: connections are left untouched at dump and come back closed after a restore',
    };
  }
  return {
    status: 'ok',
    detail: `criu ${criu.text} dumps tasks holding sockets here; connections are left untouched at dump and come back closed after a restore (no network lock needed)`,
  };
}

function statusField(name: string): string | undefined {
  return new RegExp(`^${name}:\\s*(\\S+)`, 'm').exec(readFileSync('/proc/self/status', 'utf8'))?.[1];
}

/**
 * The native bindings that hash chunks (BLAKE3) and packs (CRC-32). Without them a checkpoint still works, at
 * about 0.5 more CPU-seconds per GiB: chunks are named by SHA-256 and packs checked by zlib's CRC-32.
 */
export function chunkHashingCheck(blake3Missing: string | undefined, crc32: string): Omit<CheckResult, 'name'> {
  if (blake3Missing === undefined) return { status: 'ok', detail: `chunks named by BLAKE3 (native); pack CRC-32 ${crc32}` };
  return {
    status: 'warn',
    detail: `BLAKE3's native binding did not load (${blake3Missing}): chunks are named by SHA-256, more slowly, and this agent cannot restore a snapshot whose chunks are named by BLAKE3; pack CRC-32 ${crc32}`,
    fix: 'use the image as docker/build-images.sh builds it: /opt/spotsnap/lib/native must hold the bindings for this architecture',
  };
}

async function check(name: string, run: () => Promise<Omit<CheckResult, 'name'>>): Promise<CheckResult> {
  try {
    return { name, ...(await run()) };
  } catch (error) {
    return { name, status: 'fail', detail: error instanceof Error ? error.message.split('\n')[0]! : String(error) };
  }
}

export async function runDoctorChecks(env: NodeJS.ProcessEnv, client: S3Client): Promise<CheckResult[]> {
  const parsed = readConfig({ ...env, [ENV_VARS.enabled.name]: 'true' }, process.cwd());
  const results: CheckResult[] = [];
  results.push({
    name: 'configuration',
    status: parsed.kind === 'enabled' ? 'ok' : 'fail',
    detail:
      parsed.kind === 'enabled'
        ? `s3://${parsed.config.s3.bucket}/${parsed.config.s3.prefix}, job ${parsed.config.jobId}`
        : describeProblems(parsed.kind === 'invalid' ? parsed.problems : []),
    fix: parsed.kind === 'enabled' ? undefined : 'set the variables named (docs/reference.md, Configuration)',
  });
  const config = parsed.kind === 'enabled' ? parsed.config : undefined;
  // The checks below run with an invalid configuration too: each setting as readConfig reads it, or its default where it is bad.
  const criu = new CriuCli(settingOrDefault(env, ENV_VARS.criuPath));

  results.push(
    await check('CRIU', async () => {
      const version = await criu.version();
      return version.number >= MIN_CRIU_VERSION.number
        ? { status: 'ok', detail: `criu ${version.text}` }
        : {
            status: 'fail',
            detail: `criu ${version.text} is too old: its page-server protocol is not the one spotsnap receives dumps with (CRIU ${MIN_CRIU_VERSION.text} widened it)`,
            fix: `use the CRIU the spotsnap image bundles, or install CRIU ${MIN_CRIU_VERSION.text} or newer (Debian forky has 4.2.1; Debian 13 ships 4.1)`,
          };
    }),
  );
  results.push(
    await check('criu check', async () => {
      const r = await criu.check();
      const clone3 = await criu.hasFeature('clone3_set_tid');
      const errors = r.errors;
      const harmless = errors.filter((l) => harmlessCheckError(l, clone3));
      const real = errors.filter((l) => !harmlessCheckError(l, clone3));
      const note =
        harmless.length > 0 ? ` (${harmless.length} harmless: RLIMIT_NOFILE, tun devices or ns_last_pid, which CRIU 4 does without when clone3 works)` : '';
      return r.exitCode === 0 || real.length === 0
        ? { status: 'ok', detail: `the kernel and permissions support checkpoint/restore${note}` }
        : { status: 'fail', detail: real.slice(0, 3).join('; '), fix: 'run the container with the options in docker/README.md' };
    }),
  );
  results.push(
    await check('TCP connections', async () =>
      tcpCheck(await criu.version(), os.release(), settingOrDefault(env, ENV_VARS.tcpMode), findExecutable('iptables-restore')),
    ),
  );
  results.push(await check('chunk hashing', async () => chunkHashingCheck(blake3Unavailable(), crc32Implementation())));
  results.push(
    await check('restore streaming', async () => {
      // Where a restore's images go: the longest snapshot id gives the longest socket path.
      const streaming = streamingRelay(restoreImagesDir(settingOrDefault(env, ENV_VARS.workDir), 'a9999-20261204T050922221Z'));
      return 'relay' in streaming
        ? { status: 'ok', detail: `memory pages stream from S3 into criu restore --stream (${streaming.relay})` }
        : {
            status: 'warn',
            detail: `${streaming.why}: a restore downloads the memory pages into SPOTSNAP_WORK_DIR first (room for the task's memory)`,
            fix: 'use the image as docker/build-images.sh builds it (/opt/spotsnap/bin/spotsnap-image-relay), or a shorter SPOTSNAP_WORK_DIR',
          };
    }),
  );
  results.push(
    await check('dirty memory tracking', async () =>
      (await criu.hasFeature('mem_dirty_track'))
        ? { status: 'ok', detail: 'available' }
        : { status: 'warn', detail: 'not on this kernel: background checkpoints are full dumps, deduplicated by chunk' },
    ),
  );
  results.push(
    await check('capabilities', async () => {
      const missing = missingCapabilities(statusField('CapEff') ?? '0');
      return missing.length === 0
        ? { status: 'ok', detail: 'every capability CRIU uses is there' }
        : {
            status: 'fail',
            detail: `missing ${missing.map((c) => `${c.name} (${c.why})`).join(', ')}`,
            fix: 'run with --cap-add ALL (or --privileged); see docker/README.md',
          };
    }),
  );
  results.push(
    await check('other users', async () => {
      const mask = BigInt(`0x${statusField('CapEff') ?? '0'}`);
      return ((mask >> 24n) & 1n) === 1n
        ? { status: 'ok', detail: 'CAP_SYS_RESOURCE is there: processes of the task under other users can be checkpointed' }
        : {
            status: 'warn',
            detail:
              'no CAP_SYS_RESOURCE: a task with processes under another user (su, gosu, runuser) cannot be checkpointed ("Can\'t get rlimit"); it runs on without a snapshot',
            fix: 'add CAP_SYS_RESOURCE where the host allows it, or keep the task under one user',
          };
    }),
  );
  results.push(
    await check('file watches', async () => {
      const root = (await readFile('/proc/self/mountinfo', 'utf8').catch(() => '')).split('\n').find((line) => line.split(' ')[4] === '/');
      const overlay = / - overlay /.test(root ?? '');
      return overlay
        ? {
            status: 'warn',
            detail:
              'the root filesystem is overlayfs: CRIU cannot checkpoint an inotify or fanotify watch on a file the task deleted (the checkpoint fails and the task runs on); watches on other files are found under SPOTSNAP_PATHS and the scratch directories',
            fix: 'keep watched files under SPOTSNAP_PATHS, and do not delete a file while a watch on it is held',
          }
        : { status: 'ok', detail: 'the root filesystem is not overlayfs: CRIU reopens watched files by their handles' };
    }),
  );
  results.push(
    await check('seccomp', async () => {
      const mode = statusField('Seccomp');
      return mode === '0'
        ? { status: 'ok', detail: 'unconfined' }
        : { status: 'fail', detail: `seccomp mode ${mode}: a filter blocks the system calls CRIU needs`, fix: 'run with --security-opt seccomp=unconfined' };
    }),
  );
  results.push(
    await check('PID namespace', async () => {
      const r = await execa('unshare', ['--pid', '--fork', 'true'], { reject: false, all: true, timeout: 10_000 });
      return r.exitCode === 0
        ? { status: 'ok', detail: 'the task can run as the init of its own PID namespace' }
        : { status: 'fail', detail: (r.all ?? '').trim() || `unshare exited with ${r.exitCode}`, fix: 'CAP_SYS_ADMIN is needed (--cap-add ALL)' };
    }),
  );
  results.push(
    await check('instance metadata', async () => {
      const endpoint = settingOrDefault(env, ENV_VARS.imdsEndpoint);
      const client = new ImdsClient({ endpoint, timeoutMs: 2000 });
      const notice = await client.spotNotice();
      return {
        status: client.mode === 'v2' ? 'ok' : 'warn',
        detail: `${endpoint} answers (${client.mode === 'v2' ? 'IMDSv2 tokens work' : 'no tokens: IMDSv1'}); ${notice ? `a ${notice.action} notice is posted` : 'no spot notice'}`,
        fix: client.mode === 'v2' ? undefined : 'allow PUT /latest/api/token (hop limit 2 for containers)',
      };
    }),
  );
  results.push(
    await check('S3 prefix', async () => {
      if (!config) return { status: 'fail', detail: `no valid ${ENV_VARS.s3Uri.name}`, fix: `set ${ENV_VARS.s3Uri.name}=s3://BUCKET/PREFIX` };
      const key = doctorProbeKey(config.s3, randomUUID());
      const probe = Buffer.from('spotsnap doctor probe');
      await putPackObject(client, config.s3.bucket, key, [probe], crc32(probe), config.encryption);
      await client.send(new DeleteObjectsCommand({ Bucket: config.s3.bucket, Delete: { Objects: [{ Key: key }], Quiet: true } }));
      return { status: 'ok', detail: `wrote and deleted s3://${config.s3.bucket}/${key}` };
    }),
  );
  results.push(
    await check('image space', async () => {
      const dir = settingOrDefault(env, ENV_VARS.workDir);
      await mkdir(dir, { recursive: true });
      const fs = await statfs(dir);
      const free = fs.bavail * fs.bsize;
      const gib = (free / 1024 ** 3).toFixed(1);
      return free >= 256 * 1024 ** 2
        ? { status: 'ok', detail: `${gib} GiB free in ${dir} (a background checkpoint may hold up to the task's memory here)` }
        : { status: 'fail', detail: `only ${gib} GiB free in ${dir}`, fix: 'point SPOTSNAP_WORK_DIR at a larger disk or tmpfs' };
    }),
  );
  return results;
}

export interface DoctorOptions {
  /** One JSON document (doctorReport) instead of the table. */
  json: boolean;
}

/** What `spotsnap doctor --json` prints: every check, and the verdict (the worst status). */
export interface DoctorReport {
  verdict: CheckStatus;
  /** Whether no check failed: warnings name what a checkpoint will lack, but do not stop it. */
  canCheckpoint: boolean;
  summary: string;
  checks: Array<{ name: string; status: CheckStatus; detail: string; fix: string | null }>;
}

export function doctorReport(results: readonly CheckResult[]): DoctorReport {
  const failed = results.filter((r) => r.status === 'fail').length;
  return {
    verdict: failed > 0 ? 'fail' : results.some((r) => r.status === 'warn') ? 'warn' : 'ok',
    canCheckpoint: failed === 0,
    summary: failed === 0 ? 'a checkpoint can work here' : `${failed} check(s) failed: a checkpoint cannot work here yet`,
    checks: results.map((r) => ({ name: r.name, status: r.status, detail: r.detail, fix: r.fix ?? null })),
  };
}

/** Exit 0 when a checkpoint can work here (warnings or not), 1 when a check failed. */
export async function doctorCommand(options: DoctorOptions, env: NodeJS.ProcessEnv, client: S3Client, out: (line: string) => void): Promise<number> {
  const report = doctorReport(await runDoctorChecks(env, client));
  if (options.json) {
    out(JSON.stringify(report, null, 2));
  } else {
    const width = Math.max(...report.checks.map((r) => r.name.length));
    for (const r of report.checks) {
      out(`${r.status === 'ok' ? 'ok  ' : r.status === 'warn' ? 'warn' : 'FAIL'}  ${r.name.padEnd(width)}  ${r.detail}${r.fix ? ` -> ${r.fix}` : ''}`);
    }
    out(report.summary);
  }
  return report.canCheckpoint ? 0 : 1;
}
