/**
 * The outputs of the streams a gateway holds (outputs/output-manager.ts), over an in-memory
 * store and a real child supervisor: a new session stores the configured outputs then the
 * grant's (capped at maxPerStream) and starts one ffmpeg each; a removal in the store stops
 * its ffmpeg at the next reconcile; a stream that ends stops its outputs with `output.ended`,
 * writes `stopped` and lets the store expire them; one that continues at another gateway
 * stops them quietly.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ChildSupervisor } from '../../../src/media/child-supervisor.ts';
import { silentLogger } from '../../../src/log/logger.ts';
import { OutputManager } from '../../../src/outputs/output-manager.ts';
import type { OutputSpec, OutputStatus } from '../../../src/outputs/output-types.ts';
import type { OutputEvents, OutputsStore } from '../../../src/outputs/outputs-ports.ts';

class MemoryOutputs implements OutputsStore {
  readonly specs = new Map<string, Map<string, OutputSpec>>();
  readonly states = new Map<string, Map<string, OutputStatus>>();
  readonly expired: string[] = [];
  async reset(m: string, specs: readonly OutputSpec[]): Promise<void> {
    this.specs.set(m, new Map(specs.map((s) => [s.id, s])));
    this.states.set(m, new Map());
  }
  async add(m: string, spec: OutputSpec, max: number): Promise<boolean> {
    const specs = this.specs.get(m) ?? new Map<string, OutputSpec>();
    if (specs.size >= max) return false;
    specs.set(spec.id, spec);
    this.specs.set(m, specs);
    return true;
  }
  async remove(m: string, id: string): Promise<boolean> {
    this.states.get(m)?.delete(id);
    return this.specs.get(m)?.delete(id) ?? false;
  }
  async list(m: string): Promise<{ spec: OutputSpec; status?: OutputStatus }[]> {
    return [...(this.specs.get(m)?.values() ?? [])].map((spec) => {
      const status = this.states.get(m)?.get(spec.id);
      return status ? { spec, status } : { spec };
    });
  }
  async setStates(m: string, states: ReadonlyMap<string, OutputStatus>): Promise<void> {
    const all = this.states.get(m) ?? new Map<string, OutputStatus>();
    for (const [id, s] of states) all.set(id, s);
    this.states.set(m, all);
  }
  async expire(m: string): Promise<void> {
    this.expired.push(m);
  }
}

type Emitted = Parameters<OutputEvents['emit']>[0];

function setup(): { store: MemoryOutputs; supervisor: ChildSupervisor; events: Emitted[]; manager: OutputManager } {
  const store = new MemoryOutputs();
  const supervisor = new ChildSupervisor({ logger: silentLogger() });
  const events: Emitted[] = [];
  const manager = new OutputManager({
    store, supervisor, events: { emit: (e) => events.push(e) }, logger: silentLogger(),
    readSegment: async () => undefined, listedSeqs: async () => [],
    maxPerStream: 3, backoffInitialMs: 100, backoffMaxMs: 400,
    defaults: [{ url: 'rtmp://127.0.0.1:9/live/default-key', rendition: 'source' }],
  });
  return { store, supervisor, events, manager };
}

const settle = (ms = 100): Promise<void> => new Promise((r) => setTimeout(r, ms));

test('a new session stores the configured outputs then the grant\'s, capped at maxPerStream, and runs one ffmpeg each', async () => {
  const { store, supervisor, manager } = setup();
  try {
    manager.opened({ manifestID: 'cam', session: 's1', resumed: false, grant: { outputs: [1, 2, 3].map((i) => ({ url: `srt://127.0.0.1:9?streamid=k${i}`, rendition: 'source' })) } });
    await manager.reconcile('cam');
    const stored = await store.list('cam');
    assert.deepEqual(stored.map((o) => [o.spec.origin, o.spec.url]), [
      ['config', 'rtmp://127.0.0.1:9/live/default-key'], ['grant', 'srt://127.0.0.1:9?streamid=k1'], ['grant', 'srt://127.0.0.1:9?streamid=k2'],
    ]);
    assert.equal(manager.pids('cam').size, 3);
    assert.equal(supervisor.size, 3);
    assert.deepEqual(manager.metrics().map((m) => [m.manifestID, m.state]), [['cam', 'connecting'], ['cam', 'connecting'], ['cam', 'connecting']]);

    // Removed through the API (any gateway): the holder's reconcile stops its ffmpeg.
    const removed = stored[1]!.spec.id;
    const pid = manager.pids('cam').get(removed)!;
    await store.remove('cam', removed);
    await manager.reconcile('cam');
    await settle(400);
    assert.throws(() => process.kill(pid, 0), 'its ffmpeg is gone');
    assert.equal(manager.pids('cam').size, 2);
  } finally {
    await manager.close();
    await supervisor.close();
  }
});

test('a stream that ends stops its outputs: output.ended for each, stopped in the store, its keys set to expire', async () => {
  const { store, supervisor, events, manager } = setup();
  try {
    manager.opened({ manifestID: 'cam', session: 's1', resumed: false, grant: {} });
    await manager.reconcile('cam');
    manager.closed({ manifestID: 'cam', session: 's1', reason: 'publisher left', continued: false });
    await settle(500);
    assert.equal(supervisor.size, 0);
    const ended = events.filter((e) => e.type === 'output.ended');
    assert.equal(ended.length, 1);
    assert.deepEqual({ ...ended[0]!, outputId: 'x' }, {
      type: 'output.ended', manifestID: 'cam', session: 's1', outputId: 'x', url: 'rtmp://127.0.0.1:9/live/[redacted]', rendition: 'source', reason: 'stream ended: publisher left',
    });
    assert.deepEqual((await store.list('cam')).map((o) => o.status?.state), ['stopped']);
    assert.deepEqual(store.expired, ['cam']);
    assert.deepEqual(manager.metrics(), []);
  } finally {
    await manager.close();
    await supervisor.close();
  }
});

test('a stream that continues at another gateway hands its outputs over quietly; the new holder, resumed, runs the same ones', async () => {
  const { store, supervisor, events, manager } = setup();
  try {
    manager.opened({ manifestID: 'cam', session: 's1', resumed: false, grant: {} });
    await manager.reconcile('cam');
    const ids = (await store.list('cam')).map((o) => o.spec.id);
    manager.closed({ manifestID: 'cam', session: 's1', reason: 'lease lost', continued: true });
    await settle(500);
    assert.equal(supervisor.size, 0);
    assert.deepEqual(events, [], 'no output.ended: the output goes on elsewhere');
    assert.deepEqual(store.expired, []);
    // The same gateway (or another) takes it back: a resumed session keeps the stored outputs.
    manager.opened({ manifestID: 'cam', session: 's1', resumed: true, grant: {} });
    await manager.reconcile('cam');
    assert.deepEqual([...manager.pids('cam').keys()], ids);
  } finally {
    await manager.close();
    await supervisor.close();
  }
});
