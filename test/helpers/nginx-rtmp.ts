/**
 * nginx with Debian's libnginx-mod-rtmp (nginx-rtmp-module 1.2.2), shared by the benchmarks
 * and the tests: the reference a user would run instead of mediagate for RTMP in, HLS out
 * (bench/), and a real RTMP server that receives what mediagate restreams (test/integration/outputs).
 * Started in its own prefix under the temp dir on free loopback ports; by default HLS on with
 * 2 s fragments, playlists served over HTTP. Optionally it records every stream it receives to
 * an FLV file (`record all`) and relays every stream to other servers (`push`).
 * A missing nginx or RTMP module fails (never skips): `make test` and `make bench` install them.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './ports.ts';
import { stopChild, waitForPort } from './redis-server.ts';

/** Where Debian's libnginx-mod-rtmp installs the module. */
export const RTMP_MODULE = '/usr/lib/nginx/modules/ngx_rtmp_module.so';

export interface NginxRtmp {
  readonly pid: number;
  /** Where nginx writes the HLS playlists and fragments (`hls_path`). */
  readonly hlsDir: string;
  /** The RTMP port on 127.0.0.1. */
  readonly rtmpPort: number;
  /** `rtmp://127.0.0.1:<port>/<app>/<stream>`, app `live` by default. */
  rtmpUrl(stream: string, app?: string): string;
  /** `http://127.0.0.1:<port>/hls/<stream>.m3u8` */
  playlistUrl(stream: string): string;
  /**
   * The FLV file `record all` writes for a stream published to `app` (`<record dir>/<app>/<stream>.flv`;
   * nginx creates it when the publish starts and appends as data arrives). Only with `record: true`.
   */
  recordedFile(stream: string, app?: string): string;
  /** The nginx error log so far (connections refused, publish errors). */
  errorLog(): string;
  /** Stops master and workers (SIGTERM, fast shutdown) and removes the prefix with its files. */
  stop(): Promise<void>;
}

export interface NginxRtmpOptions {
  /** hls_fragment, seconds; default 2. */
  fragmentS?: number;
  /** hls_playlist_length, seconds; default 12 (6 fragments, as mediagate's window). */
  playlistS?: number;
  /** worker_processes; default 'auto' (one per core). */
  workers?: number | 'auto';
  /** `hls on` in every application; default true. */
  hls?: boolean;
  /** `record all` of every stream to `<prefix>/record/<app>/<stream>.flv` ({@link NginxRtmp.recordedFile}); default false. */
  record?: boolean;
  /** `push <url>;` directives: every stream published to an application is relayed to each URL (nginx-rtmp relays with the same stream name). Default none. */
  push?: readonly string[];
  /** RTMP applications, each configured alike; default `['live']`. */
  apps?: readonly string[];
  /** The RTMP port on 127.0.0.1; default a free one (a test passes the port a target refused connections on, to open it later). */
  rtmpPort?: number;
}

/**
 * Starts nginx (`daemon off`, `master_process on`) with an `rtmp { application <app> { live on;
 * hls on; } }` server per application (plus `record all` / `push` when asked) and an HTTP
 * server for the playlists.
 * @throws when nginx or the module is missing (install: apt-get install -y nginx-light libnginx-mod-rtmp).
 */
export async function startNginxRtmp(opts: NginxRtmpOptions = {}): Promise<NginxRtmp> {
  if (!existsSync(RTMP_MODULE)) throw new Error(`${RTMP_MODULE} missing: apt-get install -y nginx-light libnginx-mod-rtmp (make test and make bench install it)`);
  const prefix = mkdtempSync(join(tmpdir(), 'mg-nginx-'));
  const hls = join(prefix, 'hls');
  mkdirSync(hls);
  mkdirSync(join(prefix, 'tmp'));
  const record = join(prefix, 'record');
  const apps = opts.apps ?? ['live'];
  // Started as root, nginx's workers run as `nobody`: they must reach and write the HLS and record dirs.
  chmodSync(prefix, 0o755);
  chmodSync(hls, 0o777);
  for (const app of apps) {
    mkdirSync(join(record, app), { recursive: true });
    chmodSync(join(record, app), 0o777);
  }
  chmodSync(record, 0o755);
  const rtmpPort = opts.rtmpPort ?? await freePort();
  const httpPort = await freePort();
  const t = join(prefix, 'tmp');
  writeFileSync(join(prefix, 'nginx.conf'), `load_module ${RTMP_MODULE};
daemon off;
master_process on;
worker_processes ${opts.workers ?? 'auto'};
pid ${join(prefix, 'nginx.pid')};
error_log ${join(prefix, 'error.log')} warn;
worker_rlimit_nofile 65536;
events { worker_connections 16384; }
rtmp {
  server {
    listen 127.0.0.1:${rtmpPort};
    chunk_size 4096;
${apps.map((app) => `    application ${app} {
      live on;
${opts.record ? `      record all;\n      record_path ${join(record, app)};\n      record_unique off;` : '      record off;'}
${opts.hls === false ? '      hls off;' : `      hls on;
      hls_path ${hls};
      hls_fragment ${opts.fragmentS ?? 2}s;
      hls_playlist_length ${opts.playlistS ?? 12}s;`}
${(opts.push ?? []).map((url) => `      push ${url};`).join('\n')}
    }
`).join('')}  }
}
http {
  access_log off;
  client_body_temp_path ${t}; proxy_temp_path ${t}; fastcgi_temp_path ${t}; uwsgi_temp_path ${t}; scgi_temp_path ${t};
  server {
    listen 127.0.0.1:${httpPort};
    location /hls/ {
      alias ${hls}/;
      add_header Cache-Control no-cache;
      types { application/vnd.apple.mpegurl m3u8; video/mp2t ts; }
    }
  }
}
`);
  const child: ChildProcess = spawn('nginx', ['-p', prefix, '-c', join(prefix, 'nginx.conf')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
  const failed = new Promise<never>((_, reject) => {
    child.once('error', (err) => reject(new Error(`cannot run nginx (${err.message}): apt-get install -y nginx-light libnginx-mod-rtmp`)));
    child.once('exit', (code) => reject(new Error(`nginx exited with ${code}: ${stderr}`)));
  });
  failed.catch(() => undefined);
  await Promise.race([Promise.all([waitForPort(rtmpPort, 10_000), waitForPort(httpPort, 10_000)]), failed]);
  return {
    pid: child.pid!,
    hlsDir: hls,
    rtmpPort,
    rtmpUrl: (stream, app = 'live') => `rtmp://127.0.0.1:${rtmpPort}/${app}/${stream}`,
    playlistUrl: (stream) => `http://127.0.0.1:${httpPort}/hls/${stream}.m3u8`,
    recordedFile: (stream, app = 'live') => {
      if (!opts.record) throw new Error('nginx was started without record: true');
      return join(record, app, `${stream}.flv`);
    },
    errorLog: () => { try { return readFileSync(join(prefix, 'error.log'), 'utf8'); } catch { return ''; } },
    stop: async () => {
      await stopChild(child, 5000); // SIGTERM: fast shutdown of master and workers
      rmSync(prefix, { recursive: true, force: true });
    },
  };
}
