/**
 * Trickle, Livepeer's segmented HTTP streaming protocol: server (channels on any node:http
 * or express server) and clients. Described in docs/wire-contract.md ("Trickle").
 */
export * from './trickle-protocol.ts';
export { TrickleServer, type TrickleServerOptions, type TrickleChannelOptions } from './trickle-server.ts';
export { TricklePublisher, TrickleSegmentWriter, type TricklePublisherOptions } from './trickle-publisher.ts';
export { TrickleSubscriber, type TrickleSegment, type TrickleSubscriberOptions } from './trickle-subscriber.ts';
