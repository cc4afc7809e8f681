/**
 * lambdactl, the operator CLI (entry: ./lambdactl.ts). What other folders may
 * use: the local cluster file that `npm start` writes and lambdactl reads.
 */
export {
  LOCAL_CLUSTER_FILE,
  localClusterFilePath,
  readLocalClusterFile,
  writeLocalClusterFile,
  removeLocalClusterFile,
  LocalClusterFileError,
  StaleLocalClusterFileError,
  isStale,
  type LocalClusterFile,
} from "./connection.js";
