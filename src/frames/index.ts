/**
 * mediagate's frame API (`mediagate/frames`): read decoded frames from files, URLs, live
 * streams and recordings, and publish frames as new streams. See docs/frames.md.
 */
export * from './frame-types.ts';
export { AudioTrack, VideoTrack, type TrackEvents, type TrackOverflow } from './track.ts';
export {
  DEFAULT_MAX_QUEUED_VIDEO_FRAMES, MAX_QUEUED_AUDIO_FRAMES, openAudioTrack, openTracks, openVideoTrack,
  type AudioTrackOptions, type OpenedTracks, type OpenTracksOptions, type TrackSource, type VideoTrackOptions,
} from './open.ts';
export { testAudioTrack, testVideoTrack, type TestAudioTrackOptions, type TestVideoTrackOptions } from './test-tracks.ts';
export { saveWav, wavHeader, WAV_HEADER_BYTES, type SavedWav, type SaveWavOptions } from './wav.ts';
export { AudioSource, VideoSource, MAX_FILL_SEC, type AudioSourceOptions, type VideoSourceOptions } from './source.ts';
export { publish, type Publication, type PublishOptions, type PublishSources, type PublishTarget } from './publish.ts';
export { saveMp4, type SaveMp4Options, type SaveMp4Sources } from './save-mp4.ts';
