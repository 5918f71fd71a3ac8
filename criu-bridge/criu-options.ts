// Typed CRIU options and their translation into `criu dump` / `criu restore` argument lists.

/** Options that dump and restore share. */
export interface CriuCommonOptions {
  /** Directory holding the image files (`-D`). */
  imagesDir: string;
  /** Log file name, relative to imagesDir (`-o`); kept with the snapshot. */
  logFile: string;
  /** CRIU's log verbosity, 0 to 4 (`-v`). 4 makes failures diagnosable at little cost. */
  logLevel: 0 | 1 | 2 | 3 | 4;
  /**
   * What to do with established TCP connections: 'established' checkpoints and restores them
   * (`--tcp-established`; see dumpTcpArgs for the dumps that cannot); 'close' leaves them untouched at dump and
   * restores them closed (`--tcp-close`), for peers that will be gone.
   */
  tcpMode: 'established' | 'close';
  /** Checkpoint and restore file locks (`--file-locks`): tasks holding flock/fcntl locks can be dumped. */
  fileLocks: boolean;
  /** Flags appended as they are: the escape hatch for what this type does not model. */
  extraArgs: readonly string[];
  /**
   * The container's mount points that are files (`/etc/hosts`, `/etc/resolv.conf`, ...). The task runs in a
   * mount namespace of its own (for its own /proc) whose mounts are binds of the container's: CRIU records them as
   * external (`--ext-mount-map auto`) and a restore binds the new container's own at the same paths. File mounts
   * are named one by one (`--external mnt[P]:P`), because the autodetected name of a file mount ends in "/" and
   * its restore then fails ("Failed to open_tree /etc/resolv.conf/: Not a directory").
   */
  externalFileMounts: readonly string[];
}

export interface CriuDumpOptions extends CriuCommonOptions {
  /** Host PID of the root of the process tree (the init of the task's PID namespace) (`-t`). */
  pid: number;
  /**
   * What becomes of the tree once dumped: 'kill' (CRIU's default), 'stop' (`--leave-stopped`: frozen with
   * SIGSTOP, so the caller decides after the upload whether to kill it or let it go on) or 'run' (`--leave-running`).
   */
  afterDump: 'kill' | 'stop' | 'run';
  /**
   * The largest unlinked-but-open file CRIU copies into the images (`--ghost-limit`; CRIU's default is 1 MiB,
   * which refuses the scratch files tools keep with `tmpfile()`).
   */
  ghostLimitBytes?: number;
  /**
   * Directories CRIU scans for the path of a file watched with inotify or fanotify when it cannot reopen the file
   * by its handle, as on overlayfs (`--irmap-scan-path`; CRIU only scans then, so it costs nothing otherwise).
   */
  irmapScanPaths?: readonly string[];
  /**
   * The pages go to a page server on this inherited descriptor (`--page-server --ps-socket FD`) rather than to
   * pages-*.img files in the images directory.
   */
  pageServerFd?: number;
}

/** A resource CRIU must take from one of its own file descriptors at restore (`--inherit-fd fd[N]:KEY`). */
export interface InheritedFd {
  /** The file descriptor number in the criu process. */
  fd: number;
  /** The resource as recorded at dump, e.g. `pipe:[12345]`. */
  key: string;
}

/**
 * The pipes a task's tree writes to (its stdout, stderr and status pipe), as CRIU records them at dump
 * (`pipe:[INODE]`): a restore re-attaches each to a new pipe with `--inherit-fd`, and the manifest keeps them.
 */
export interface TaskPipeKeys {
  stdout: string;
  stderr: string;
  status: string;
}

export interface CriuRestoreOptions extends CriuCommonOptions {
  /** External pipes re-attached to the new container's descriptors. */
  inheritFds: readonly InheritedFd[];
  /** File CRIU writes the restored root's PID to once the tree runs (`--pidfile`). */
  pidFile: string;
  /**
   * Punch each page out of the images as it is restored (`--auto-dedup`): for images used once, the task's
   * memory is held once rather than twice (images and process) at the end of a restore, and the pages freed
   * are the ones the restored process takes next.
   */
  consumeImages: boolean;
  /**
   * Read every image through CRIU's image streaming (`--stream`) from the server listening in the images
   * directory (image-stream-server.ts), not from files there.
   */
  stream?: boolean;
}

function commonArgs(o: CriuCommonOptions): string[] {
  return [
    '--images-dir',
    o.imagesDir,
    '--log-file',
    o.logFile,
    `-v${o.logLevel}`,
    // Open files that were unlinked while open are kept through "link remap" files in the images.
    '--link-remap',
    ...(o.fileLocks ? ['--file-locks'] : []),
    '--ext-mount-map',
    'auto',
    ...o.externalFileMounts.flatMap((p) => ['--external', `mnt[${p}]:${p}`]),
  ];
}

/**
 * The TCP flags of a dump. 'close' never touches a connection (`--tcp-close`: no repair mode and no network lock, so
 * neither iptables nor nft is needed) and the images hold none of their state. 'established' dumps their state
 * (`--tcp-established`) only where CRIU itself ends the tree ('kill') or takes the connections out of repair mode
 * again ('run'): with `--leave-stopped` CRIU skips its network unlock, so a tree continued after the dump finds its
 * connections still in repair mode (the next send fails with EPERM) and any lock rules CRIU added left in place.
 * Such a dump passes neither flag: CRIU then refuses a tree holding an established connection ("Connected TCP
 * socket, consider using --tcp-established"), the task runs on with its connections intact, and a tree without one
 * is dumped as before (its images restore with `--tcp-established`).
 */
export function dumpTcpArgs(o: Pick<CriuDumpOptions, 'tcpMode' | 'afterDump'>): string[] {
  if (o.tcpMode === 'close') return ['--tcp-close'];
  return o.afterDump === 'stop' ? [] : ['--tcp-established'];
}

/** Arguments for `criu dump`. */
export function dumpArgs(o: CriuDumpOptions): string[] {
  return [
    'dump',
    '--tree',
    String(o.pid),
    ...commonArgs(o),
    ...dumpTcpArgs(o),
    ...(o.afterDump === 'stop' ? ['--leave-stopped'] : o.afterDump === 'run' ? ['--leave-running'] : []),
    ...(o.ghostLimitBytes !== undefined ? ['--ghost-limit', String(o.ghostLimitBytes)] : []),
    ...(o.irmapScanPaths ?? []).flatMap((p) => ['--irmap-scan-path', p]),
    ...(o.pageServerFd !== undefined ? ['--page-server', '--ps-socket', String(o.pageServerFd)] : []),
    ...o.extraArgs,
  ];
}

/** Arguments for `criu restore` in the foreground: criu stays the restored root's parent until it exits. */
export function restoreArgs(o: CriuRestoreOptions): string[] {
  return [
    'restore',
    ...commonArgs(o),
    // The task's mount namespace is rebuilt on the new container's root (CRIU requires a root to restore one).
    '--root',
    '/',
    ...(o.tcpMode === 'established' ? ['--tcp-established'] : ['--tcp-close']),
    '--pidfile',
    o.pidFile,
    ...(o.stream ? ['--stream'] : o.consumeImages ? ['--auto-dedup'] : []),
    ...o.inheritFds.flatMap((f) => ['--inherit-fd', `fd[${f.fd}]:${f.key}`]),
    ...o.extraArgs,
  ];
}

/**
 * The arguments of a `criu dump` with CRIU's own defaults and none of spotsnap's options (the benchmark's plain
 * baseline): the tree is killed once dumped.
 */
export function baselineDumpArgs(pid: number, imagesDir: string, logFile: string): string[] {
  return ['dump', '-t', String(pid), '-D', imagesDir, '-o', logFile];
}

/** The arguments of a detached `criu restore` with CRIU's own defaults (the benchmark's plain baseline). */
export function baselineRestoreArgs(imagesDir: string, logFile: string): string[] {
  return ['restore', '-d', '-D', imagesDir, '-o', logFile];
}
