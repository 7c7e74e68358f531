/**
 * Which of this host's addresses another host reaches it on, for a worker bound to a wildcard
 * address (`0.0.0.0`, `::`) that must tell a gateway on another machine where to call it:
 * `127.0.0.1` (what a wildcard bind means for a caller on the same host) is wrong there.
 */
import { createSocket } from 'node:dgram';
import { isIP } from 'node:net';

/**
 * The local address the kernel would send from to reach `url`'s host: a UDP socket is
 * `connect`ed to it (a route lookup, no packet sent) and its local address read.
 * @param url e.g. `http://10.0.0.5:9935`; a host name is resolved (DNS)
 * @returns e.g. `10.0.0.9`, or undefined when the host does not resolve or has no route
 *   within `timeoutMs` (default 2000)
 */
export async function localAddressTowards(url: string, timeoutMs = 2000): Promise<string | undefined> {
  let host: string;
  let port: number;
  try {
    const parsed = new URL(url);
    host = parsed.hostname.replace(/^\[|\]$/g, '');
    port = Number(parsed.port) || (parsed.protocol === 'https:' ? 443 : 80);
  } catch {
    return undefined;
  }
  const socket = createSocket(isIP(host) === 6 ? 'udp6' : 'udp4');
  try {
    return await new Promise<string | undefined>((resolve) => {
      const timer = setTimeout(() => resolve(undefined), timeoutMs);
      socket.once('error', () => { clearTimeout(timer); resolve(undefined); });
      socket.connect(port, host, () => {
        clearTimeout(timer);
        resolve(socket.address().address);
      });
    });
  } finally {
    socket.close();
  }
}

/**
 * The worker URL to give a gateway: `derived` (from `publicUrl` or the bind address) unless
 * the worker is bound to a wildcard address and no `publicUrl` is set, in which case the
 * address this host reaches `gatewayUrl` from (127.0.0.1 for a gateway on this host).
 * @param derived `http://<host>:<port>` as config.ts `derivePublicUrl` made it
 */
export async function reachableWorkerUrl(options: { derived: string; host: string; publicUrl: string; gatewayUrl: string; port: number }): Promise<string> {
  const wildcard = options.host === '0.0.0.0' || options.host === '::' || options.host === '[::]';
  if (options.publicUrl !== '' || !wildcard || options.gatewayUrl === '') return options.derived;
  const local = await localAddressTowards(options.gatewayUrl);
  if (local === undefined) return options.derived;
  return `http://${local.includes(':') ? `[${local}]` : local}:${options.port}`;
}
