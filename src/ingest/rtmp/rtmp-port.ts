/**
 * Addresses and ports of the RTMP listener: the address a local client connects to, what
 * counts as loopback, and the TCP checks around NMS's listen (NMS cannot report a bound
 * port or a listen error itself, see nms-adapter.ts).
 */
import net from 'node:net';
import { GatewayError } from '../../errors/gateway-error.ts';

/**
 * The address a client on this host connects to for a listener bound to `bindHost`: the bind
 * address itself, or loopback for a wildcard bind (`0.0.0.0` → `127.0.0.1`, `::` → `::1`).
 */
export function localConnectHost(bindHost: string): string {
  return bindHost === '0.0.0.0' ? '127.0.0.1' : bindHost === '::' ? '::1' : bindHost;
}

/** A loopback address: `::1`, `127.0.0.0/8`, or `127.x` mapped into IPv6. */
export function isLoopback(address: string): boolean {
  return address === '::1' || address.startsWith('127.') || address.startsWith('::ffff:127.');
}

/** CONFIG_INVALID naming the port and why it cannot be bound. */
export function portError(host: string, port: number, err: NodeJS.ErrnoException): GatewayError {
  const why = err.code === 'EADDRINUSE' ? 'is already in use' : `cannot be bound (${err.code ?? err.message})`;
  return new GatewayError('CONFIG_INVALID', `RTMP port ${host}:${port} ${why}`, { cause: err });
}

/** Listens on the port ourselves and releases it; rejects with a clear error when that fails. */
export function assertPortFree(host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.unref();
    probe.once('error', (err: NodeJS.ErrnoException) => reject(portError(host, port, err)));
    probe.listen({ host, port, exclusive: true }, () => probe.close(() => resolve()));
  });
}

/** Whether a TCP connection to `host:port` succeeds (closed right away). */
export function canConnect(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => {
      socket.destroy();
      resolve(false);
    });
  });
}

export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
