/**
 * nginx with Debian's libnginx-mod-rtmp (nginx-rtmp-module 1.2.2): the reference a user
 * would run instead of mediagate for RTMP in, HLS out. Started in its own prefix under the
 * temp dir on free loopback ports, HLS on with 2 s fragments, playlists served over HTTP.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../test/helpers/ports.ts';
import { stopChild, waitForPort } from '../../test/helpers/redis-server.ts';
import { treeRssBytes } from './procs.ts';

/** Where Debian's libnginx-mod-rtmp installs the module. */
export const RTMP_MODULE = '/usr/lib/nginx/modules/ngx_rtmp_module.so';

export interface NginxRtmp {
  readonly pid: number;
  /** Where nginx writes the HLS playlists and fragments (`hls_path`). */
  readonly hlsDir: string;
  /** `rtmp://127.0.0.1:<port>/live/<stream>` */
  rtmpUrl(stream: string): string;
  /** `http://127.0.0.1:<port>/hls/<stream>.m3u8` */
  playlistUrl(stream: string): string;
  /** Resident memory of the master and worker processes, bytes. */
  rssBytes(): number;
  stop(): Promise<void>;
}

export interface NginxRtmpOptions {
  /** hls_fragment, seconds; default 2. */
  fragmentS?: number;
  /** hls_playlist_length, seconds; default 12 (6 fragments, as mediagate's window). */
  playlistS?: number;
  /** worker_processes; default 'auto' (one per core). */
  workers?: number | 'auto';
}

/**
 * Starts nginx (`daemon off`, `master_process on`) with an `rtmp { application live { live on;
 * hls on; } }` server and an HTTP server for the playlists.
 * @throws when nginx or the module is missing (install: apt-get install -y nginx-light libnginx-mod-rtmp).
 */
export async function startNginxRtmp(opts: NginxRtmpOptions = {}): Promise<NginxRtmp> {
  if (!existsSync(RTMP_MODULE)) throw new Error(`${RTMP_MODULE} missing: apt-get install -y nginx-light libnginx-mod-rtmp (make bench installs it)`);
  const prefix = mkdtempSync(join(tmpdir(), 'mg-bench-nginx-'));
  const hls = join(prefix, 'hls');
  mkdirSync(hls);
  mkdirSync(join(prefix, 'tmp'));
  // Started as root, nginx's workers run as `nobody`: they must reach and write the HLS dir.
  chmodSync(prefix, 0o755);
  chmodSync(hls, 0o777);
  const rtmpPort = await freePort();
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
    application live {
      live on;
      record off;
      hls on;
      hls_path ${hls};
      hls_fragment ${opts.fragmentS ?? 2}s;
      hls_playlist_length ${opts.playlistS ?? 12}s;
    }
  }
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
    rtmpUrl: (stream) => `rtmp://127.0.0.1:${rtmpPort}/live/${stream}`,
    playlistUrl: (stream) => `http://127.0.0.1:${httpPort}/hls/${stream}.m3u8`,
    rssBytes: () => treeRssBytes(child.pid!),
    stop: async () => {
      await stopChild(child, 5000); // SIGTERM: fast shutdown of master and workers
      rmSync(prefix, { recursive: true, force: true });
    },
  };
}
