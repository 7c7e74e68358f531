/** HTTP push end to end (http-push-suite.ts) on the filesystem object store. */
import { httpPushSuite } from './http-push-suite.ts';

httpPushSuite('fs');
