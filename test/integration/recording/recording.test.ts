/** Recordings end to end (recording-suite.ts) on the filesystem object store. */
import { recordingSuite } from './recording-suite.ts';

recordingSuite('fs');
