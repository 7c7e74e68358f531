import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Router } from 'express';
import { crossSiteReason, hostMatcher, hostNameOf, isPublicRead, type RequestGuardOptions } from '../../../src/http/request-guard.ts';
import { createHttpApp } from '../../../src/http/http-app.ts';
import { silentLogger } from '../../../src/log/logger.ts';
import { loadConfig } from '../../../src/config/config.ts';

test('hostNameOf reads the host name of a Host header, lower case, without port, brackets or trailing dot', () => {
  assert.equal(hostNameOf('127.0.0.1:9935'), '127.0.0.1');
  assert.equal(hostNameOf('[::1]:9935'), '::1');
  assert.equal(hostNameOf('Example.COM.:80'), 'example.com');
  assert.equal(hostNameOf('localhost'), 'localhost');
  for (const junk of ['', 'a b', 'user@127.0.0.1', '127.0.0.1/x', 'evil.example#127.0.0.1', 'evil.example?127.0.0.1', '[::1']) {
    assert.equal(hostNameOf(junk), undefined, junk);
  }
});

test('hostMatcher accepts loopback names, the publicUrl host and configured names (with .domain suffixes), nothing else', () => {
  const ours = hostMatcher('https://Media.Example.org:8443/base', ['10.0.0.5', '.cluster.local', '[fd00::1]', '0.0.0.0']);
  for (const name of ['localhost', '127.0.0.1', '127.3.2.1', '::1', 'media.example.org', '10.0.0.5', 'cluster.local', 'gw.cluster.local', 'fd00::1']) {
    assert.equal(ours(name), true, name);
  }
  for (const name of ['attacker.example', 'media.example.org.attacker.example', 'evilcluster.local', '0.0.0.0', '10.0.0.6', 'localhost.attacker.example']) {
    assert.equal(ours(name), false, name);
  }
  assert.equal(hostMatcher('', [])('example.com'), false);
});

test('crossSiteReason refuses cross-site and same-site fetch metadata and foreign or opaque origins, and passes non-browsers', () => {
  const host = '127.0.0.1:9935';
  assert.equal(crossSiteReason({ host }, undefined), undefined, 'no browser headers');
  assert.equal(crossSiteReason({ host, secFetchSite: 'none' }, undefined), undefined, 'typed in the address bar');
  assert.equal(crossSiteReason({ host, secFetchSite: 'same-origin', origin: 'http://127.0.0.1:9935' }, undefined), undefined);
  assert.equal(crossSiteReason({ host, origin: 'https://gw.example' }, 'https://gw.example'), undefined, 'the publicUrl origin (behind a proxy)');
  assert.match(crossSiteReason({ host, secFetchSite: 'cross-site' }, undefined)!, /Sec-Fetch-Site: cross-site/);
  assert.match(crossSiteReason({ host, secFetchSite: 'Same-Site' }, undefined)!, /Sec-Fetch-Site: same-site/);
  assert.match(crossSiteReason({ host, origin: 'http://127.0.0.1:3000' }, undefined)!, /Origin http:\/\/127\.0\.0\.1:3000 is not this gateway's origin/);
  assert.match(crossSiteReason({ host, origin: 'null' }, undefined)!, /opaque/);
  assert.match(crossSiteReason({ host, origin: 'not a url' }, undefined)!, /not a valid origin/);
  assert.match(crossSiteReason({ host, origin: 'http://gw.example' }, 'https://gw.example')!, /not this gateway's origin/, 'the scheme is part of the origin');
});

test('isPublicRead exempts safe methods on playback paths and /healthz only', () => {
  assert.equal(isPublicRead('GET', '/stream/show.m3u8'), true);
  assert.equal(isPublicRead('OPTIONS', '/stream/show/source.m3u8'), true);
  assert.equal(isPublicRead('HEAD', '/healthz'), true);
  assert.equal(isPublicRead('POST', '/stream/show.m3u8'), false);
  assert.equal(isPublicRead('GET', '/api/streams'), false);
  assert.equal(isPublicRead('GET', '/metrics'), false);
});

async function serve(guard: RequestGuardOptions): Promise<{ port: number; close: () => void }> {
  const router = Router();
  router.get('/api/thing', (_req, res) => { res.json({ ok: true }); });
  router.post('/api/thing', (_req, res) => { res.status(201).json({ ok: true }); });
  router.get('/stream/x.m3u8', (_req, res) => { res.type('application/vnd.apple.mpegurl').send('#EXTM3U\n'); });
  const app = createHttpApp({ logger: silentLogger(), routers: [router], health: async () => ({ status: 'ok', checks: {} }), guard });
  const server = await new Promise<Server>((resolve) => { const s = app.listen(0, '127.0.0.1', () => resolve(s)); });
  return { port: (server.address() as AddressInfo).port, close: () => { server.closeAllConnections(); server.close(); } };
}

function status(port: number, method: string, path: string, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, method, path, headers }, (res) => { res.resume(); res.on('end', () => resolve(res.statusCode ?? 0)); });
    req.on('error', reject);
    req.end();
  });
}

test('with http.allowedHosts the Host check also runs on a public bind; without it a public bind accepts any Host', async () => {
  const listed = await serve({ checkHost: true, publicUrl: 'https://gw.example', hostNames: ['0.0.0.0', 'media.internal'] });
  const open = await serve({ checkHost: false, publicUrl: 'https://gw.example', hostNames: ['0.0.0.0'] });
  try {
    assert.equal(await status(listed.port, 'GET', '/api/thing', { host: 'media.internal:9935' }), 200);
    assert.equal(await status(listed.port, 'GET', '/api/thing', { host: 'gw.example' }), 200, 'the publicUrl host');
    assert.equal(await status(listed.port, 'GET', '/api/thing', { host: 'other.example' }), 403);
    assert.equal(await status(listed.port, 'GET', '/stream/x.m3u8', { host: 'other.example' }), 200, 'playback on any Host');
    assert.equal(await status(open.port, 'GET', '/api/thing', { host: 'other.example' }), 200, 'public bind without a list');
    assert.equal(await status(open.port, 'POST', '/api/thing', { host: 'other.example', origin: 'https://evil.example' }), 403, 'cross-site still refused');
    assert.equal(await status(open.port, 'POST', '/api/thing', { host: 'other.example', origin: 'https://gw.example' }), 201, 'the publicUrl origin may post');
  } finally {
    listed.close();
    open.close();
  }
});

test('http.allowedHosts comes from MEDIAGATE_HTTP_ALLOWED_HOSTS as a comma-separated list and refuses ports and URLs', () => {
  assert.deepEqual(loadConfig({ env: { MEDIAGATE_HTTP_ALLOWED_HOSTS: 'media.example.com, .cluster.local,[fd00::1]' } }).http.allowedHosts, ['media.example.com', '.cluster.local', '[fd00::1]']);
  assert.deepEqual(loadConfig({ env: {} }).http.allowedHosts, []);
  for (const bad of ['media.example.com:8443', 'http://media.example.com', 'a b']) {
    assert.throws(() => loadConfig({ env: { MEDIAGATE_HTTP_ALLOWED_HOSTS: bad } }), /allowedHosts/, bad);
  }
});
