/**
 * mediagate's frame API (`mediagate/frames`): read decoded frames from files, URLs, live
 * streams and recordings, and publish frames as new streams. See docs/frames.md.
 */
export * from './frame-types.ts';
