import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startRedis, type TestRedis } from '../../helpers/redis-server.ts';
import { RedisConnections, type Redis } from '../../../src/redis/connections.ts';
import { ControlBus, type StopMessage } from '../../../src/control/control-bus.ts';
import { silentLogger } from '../../../src/log/logger.ts';
import { until } from '../events/receiver.ts';

let server: TestRedis;
before(async () => { server = await startRedis(); });
after(async () => { await server.stop(); });

/** Waits until Redis counts `count` subscribers on `channel` (the SUBSCRIBE is sent asynchronously). */
async function subscribed(redis: Redis, channel: string, count: number): Promise<void> {
  const deadline = Date.now() + 5000;
  for (;;) {
    const [, n] = await redis.pubsub('NUMSUB', channel) as [string, number];
    if (Number(n) === count) return;
    if (Date.now() > deadline) throw new Error(`${channel} has ${n} subscribers, not ${count}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

function gateway(name: string, prefix: string, received: StopMessage[]): { connections: RedisConnections; bus: ControlBus } {
  const logger = silentLogger();
  const connections = new RedisConnections({ url: server.url, logger, namePrefix: `mediagate:${name}` });
  const bus = new ControlBus({
    publisher: connections.open('control', 'commands'), subscriber: connections.open('control-sub', 'blocking'),
    prefix, logger, onStop: (m) => received.push(m),
  });
  return { connections, bus };
}

test('a stop request reaches every gateway on the prefix, on channel <prefix>:control', async () => {
  const a: StopMessage[] = [];
  const b: StopMessage[] = [];
  const ga = gateway('a', 'cb1', a);
  const gb = gateway('b', 'cb1', b);
  try {
    await subscribed(ga.connections.open('control'), 'cb1:control', 2);
    assert.equal(await ga.bus.requestStop('cam1', 'stopped through the control API'), 2);
    await until(() => a.length === 1 && b.length === 1, 'both gateways got the stop');
    assert.deepEqual(a[0], { action: 'stop', manifestID: 'cam1', reason: 'stopped through the control API' });
    assert.deepEqual(b[0], a[0]);
  } finally {
    await ga.bus.close();
    await gb.bus.close();
    await ga.connections.close();
    await gb.connections.close();
  }
});

test('close() unsubscribes and stops handling messages, leaves both connections open, and is idempotent', async () => {
  const got: StopMessage[] = [];
  const { connections, bus } = gateway('c', 'cb2', got);
  try {
    const publisher = connections.open('control');
    const subscriber = connections.open('control-sub');
    await subscribed(publisher, 'cb2:control', 1);
    await bus.close();
    await bus.close();
    const [, count] = await publisher.pubsub('NUMSUB', 'cb2:control') as [string, number];
    assert.equal(Number(count), 0, 'no subscriber left on the channel');
    assert.equal(await publisher.publish('cb2:control', JSON.stringify({ action: 'stop', manifestID: 'late', reason: 'x' })), 0);
    assert.equal(got.length, 0);
    assert.equal(publisher.status, 'ready');
    assert.equal(subscriber.status, 'ready');
    assert.equal(await subscriber.ping(), 'PONG');
  } finally {
    await connections.close();
  }
});
