import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DeliveryGate, type GateDecision } from '../../../src/events/delivery-gate.ts';

function gate(overrides: Partial<ConstructorParameters<typeof DeliveryGate>[0]> = {}) {
  const clock = { now: 1_000_000 };
  const g = new DeliveryGate({ maxInFlight: 2, failureThreshold: 3, openMs: 10_000, timeoutMs: 5000, nowMs: () => clock.now, random: () => 0, ...overrides });
  return { g, clock };
}

function send(d: GateDecision): Extract<GateDecision, { action: 'send' }> {
  assert.equal(d.action, 'send');
  return d as Extract<GateDecision, { action: 'send' }>;
}

test('attempts beyond maxInFlight to one receiver are deferred while other receivers still send', () => {
  const { g } = gate();
  send(g.admit('a'));
  send(g.admit('a'));
  assert.equal(g.admit('a').action, 'defer');
  send(g.admit('b'));
  assert.equal(g.inFlight('a'), 2);
});

test('a released slot lets the next attempt send', () => {
  const { g } = gate({ maxInFlight: 1 });
  const first = send(g.admit('a'));
  assert.equal(g.admit('a').action, 'defer');
  first.release('delivered');
  send(g.admit('a'));
});

test('the deferral follows the oldest attempt: short for a fast receiver, up to its deadline for a hanging one', () => {
  const { g, clock } = gate({ maxInFlight: 1 });
  send(g.admit('a'));
  assert.deepEqual(g.admit('a'), { action: 'defer', delayMs: 100 }, 'just started: the minimum');
  clock.now += 1500;
  assert.deepEqual(g.admit('a'), { action: 'defer', delayMs: 1500 }, 'running 1.5 s: about as long again');
  clock.now += 2500;
  assert.deepEqual(g.admit('a'), { action: 'defer', delayMs: 1000 }, 'running 4 s of 5: until its deadline');
});

test('jitter adds up to half the deferral', () => {
  const { g, clock } = gate({ maxInFlight: 1, random: () => 0.999 });
  send(g.admit('a'));
  clock.now += 1000;
  const d = g.admit('a');
  assert.equal(d.action, 'defer');
  assert.equal((d as { delayMs: number }).delayMs, 1500);
});

test('consecutive retryable failures open the circuit; attempts then fail fast until it has been open openMs', () => {
  const { g, clock } = gate();
  assert.equal(send(g.admit('a')).release('retryable'), false);
  assert.equal(send(g.admit('a')).release('retryable'), false);
  assert.equal(send(g.admit('a')).release('retryable'), true, 'third failure opens');
  assert.deepEqual(g.admit('a'), { action: 'fail-fast', openForMs: 10_000 });
  send(g.admit('b'));
  clock.now += 10_000;
  const probe = send(g.admit('a'));
  assert.equal(probe.release('retryable'), true, 'a failed probe reopens at once');
  assert.equal(g.admit('a').action, 'fail-fast');
});

test('a success or a non-retryable answer closes the circuit and resets the failure count', () => {
  const { g, clock } = gate({ failureThreshold: 2 });
  send(g.admit('a')).release('retryable');
  send(g.admit('a')).release('permanent');
  assert.equal(send(g.admit('a')).release('retryable'), false, 'count restarted after the 4xx');
  send(g.admit('a')).release('retryable');
  assert.equal(g.admit('a').action, 'fail-fast');
  clock.now += 10_000;
  send(g.admit('a')).release('delivered');
  assert.equal(send(g.admit('a')).release('retryable'), false);
  assert.equal(g.admit('a').action, 'send');
});

test('releasing twice counts once', () => {
  const { g } = gate({ failureThreshold: 2 });
  const d = send(g.admit('a'));
  d.release('retryable');
  assert.equal(d.release('retryable'), false);
  assert.equal(send(g.admit('a')).release('retryable'), true, 'the second failure is the second distinct one');
});

test('invalid limits are refused', () => {
  assert.throws(() => new DeliveryGate({ maxInFlight: 0, failureThreshold: 1, openMs: 1, timeoutMs: 1 }));
});
