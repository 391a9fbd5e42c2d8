// Runs scripts/testdata/shared-suite.ts's tests: the reporter must credit this file with them.
import { sharedSuite } from './shared-suite.ts';

sharedSuite();
