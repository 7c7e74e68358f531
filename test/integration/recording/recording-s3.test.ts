/**
 * Recordings end to end (recording-suite.ts) on the S3 object store: s3rver in a child
 * process, or the endpoint MEDIAGATE_TEST_S3_ENDPOINT names (test/helpers/s3rver.ts).
 */
import { recordingSuite } from './recording-suite.ts';

recordingSuite('s3');
