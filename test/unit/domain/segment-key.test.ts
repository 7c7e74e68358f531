import { test } from 'node:test';
import assert from 'node:assert/strict';
import { renditionKeyBeside, segmentKey, sessionPrefix } from '../../../src/domain/segment.ts';

test('segment keys are scoped by publish session, so two sessions of one manifest ID never share a key', () => {
  assert.equal(segmentKey('cam', 'm1abc', 'source', 7), 'cam/m1abc/source/7.ts');
  assert.notEqual(segmentKey('cam', 'm1abc', 'source', 7), segmentKey('cam', 'm2def', 'source', 7));
  assert.ok(segmentKey('cam', 'm1abc', 'P360p30fps16x9', 0).startsWith(sessionPrefix('cam', 'm1abc')));
  assert.ok(!segmentKey('cam', 'm2def', 'source', 0).startsWith(sessionPrefix('cam', 'm1abc')));
});

test('a rendition segment is stored beside its source segment, whatever layout the source key has', () => {
  assert.equal(renditionKeyBeside(segmentKey('cam', 's1', 'source', 7), 'P720p30fps16x9'), segmentKey('cam', 's1', 'P720p30fps16x9', 7));
  // A job queued before session-scoped keys.
  assert.equal(renditionKeyBeside('cam/source/7.ts', 'P720p30fps16x9'), 'cam/P720p30fps16x9/7.ts');
  assert.throws(() => renditionKeyBeside('7.ts', 'x'), /no rendition part/);
});
