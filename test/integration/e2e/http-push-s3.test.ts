/**
 * HTTP push end to end (http-push-suite.ts) on the S3 object store: s3rver in a child
 * process, or the endpoint MEDIAGATE_TEST_S3_ENDPOINT names (test/helpers/s3rver.ts).
 */
import { httpPushSuite } from './http-push-suite.ts';

httpPushSuite('s3');
