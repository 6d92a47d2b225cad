// dynalite ships no type declarations; this covers the part of its API that embedded-dynamo.ts uses.
declare module 'dynalite' {
  /** An http.Server whose close() also closes the LevelDB store. */
  function dynalite(options?: {
    /** LevelDB directory; in memory when omitted. */
    path?: string;
    /** How long a table stays CREATING / DELETING / UPDATING (default 500 ms each). */
    createTableMs?: number;
    deleteTableMs?: number;
    updateTableMs?: number;
    maxItemSizeKb?: number;
    verbose?: boolean;
    debug?: boolean;
  }): import('node:http').Server;

  export = dynalite;
}
