/**
 * The stream registry (src/ingest/stream-registry.ts): lookups by RTMP connection, push stream
 * name and manifest ID, and the branded ID types. The `@ts-expect-error` lines are checked by
 * `tsc --noEmit` (tsconfig includes test/): each would compile if the IDs were bare strings,
 * and the typecheck fails when such a line stops being an error. The first one is the old
 * `unpublish()` defect: a bare RTMP connection ID looked up in the map keyed `rtmp:<id>`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  StreamRegistry, newStreamSessionId, pushPublishKey, pushStreamName, rtmpConnectionId, rtmpPublishKey,
  type PublishKey, type RegisteredStream, type RtmpConnectionId,
} from '../../../src/ingest/stream-registry.ts';

interface Stream extends RegisteredStream { readonly label: string }

function stream(label: string, publishKey: PublishKey, manifestID: string): Stream {
  return { label, publishKey, manifestID, session: newStreamSessionId() };
}

test('a stream is found by its RTMP connection, its push name and its manifest ID, and not by another kind of ID', () => {
  const registry = new StreamRegistry<Stream>();
  const connection = rtmpConnectionId('nms-1');
  const rtmp = stream('rtmp', rtmpPublishKey(connection), 'cam');
  const push = stream('push', pushPublishKey(pushStreamName('nms-1')), 'other');
  registry.add(rtmp);
  registry.add(push);
  assert.equal(registry.byRtmp(connection), rtmp);
  assert.equal(registry.byPush(pushStreamName('nms-1')), push, 'the same string as a push name is another stream');
  assert.equal(registry.byManifest('cam'), rtmp);
  assert.equal(registry.byRtmp(rtmpConnectionId(rtmp.session)), undefined, 'a session ID is no connection ID');
  assert.deepEqual(registry.publishes().map((s) => s.label).sort(), ['push', 'rtmp']);
  assert.deepEqual(registry.manifests().map((s) => s.label).sort(), ['push', 'rtmp']);

  const byPublish = new Map<PublishKey, Stream>([[rtmp.publishKey, rtmp]]);
  // @ts-expect-error a bare RTMP connection ID is not a publish key (the map is keyed `rtmp:<id>`)
  assert.equal(byPublish.get(connection), undefined);
  // @ts-expect-error a plain string is not an RTMP connection ID
  registry.byRtmp('nms-1');
  // @ts-expect-error a stream session ID is not an RTMP connection ID
  registry.byRtmp(rtmp.session);
  // @ts-expect-error an RTMP connection ID is not a push stream name
  registry.byPush(connection);
  // @ts-expect-error a push stream name cannot make an RTMP publish key
  rtmpPublishKey(pushStreamName('x'));
  const asString: string = connection;
  assert.equal(asString, 'nms-1', 'a branded ID is its string at run time');
});

test('remove() forgets a stream only where it is still the one registered', () => {
  const registry = new StreamRegistry<Stream>();
  const connection: RtmpConnectionId = rtmpConnectionId('nms-2');
  const first = stream('first', rtmpPublishKey(connection), 'cam');
  const second = stream('second', pushPublishKey(pushStreamName('cam')), 'cam');
  registry.add(first);
  registry.add(second);
  registry.remove(first);
  assert.equal(registry.byManifest('cam'), second, 'the manifest now belongs to the second stream');
  assert.equal(registry.byRtmp(connection), undefined);
  registry.remove(second);
  assert.equal(registry.byManifest('cam'), undefined);
  assert.deepEqual(registry.publishes(), []);
});

test('stream session IDs start with the start time in base 36 and are unique', () => {
  const ids = new Set(Array.from({ length: 100 }, () => newStreamSessionId(1_700_000_000_000)));
  assert.equal(ids.size, 100);
  for (const id of ids) assert.match(id, new RegExp(`^${(1_700_000_000_000).toString(36)}[0-9a-f]{8}$`));
});
