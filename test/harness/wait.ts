/** Tests wait for conditions with a named deadline (src/core/wait.ts), never with a bare sleep. */
export { waitFor, type WaitOptions } from "../../src/core/wait.js";
