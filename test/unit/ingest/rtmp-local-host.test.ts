/**
 * The address the segmenter pulls an RTMP publish from (src/ingest/rtmp/rtmp-port.ts
 * `localConnectHost`): the bind address itself, loopback for a wildcard bind.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { localConnectHost } from '../../../src/ingest/rtmp/rtmp-port.ts';

test('a specific bind address is pulled from itself; a wildcard bind from loopback of its family', () => {
  assert.equal(localConnectHost('127.0.0.1'), '127.0.0.1');
  assert.equal(localConnectHost('127.0.0.2'), '127.0.0.2');
  assert.equal(localConnectHost('10.1.2.3'), '10.1.2.3');
  assert.equal(localConnectHost('::1'), '::1');
  assert.equal(localConnectHost('0.0.0.0'), '127.0.0.1');
  assert.equal(localConnectHost('::'), '::1');
});
