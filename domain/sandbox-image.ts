/** Where the sandbox image keeps its Node.js binary: pure code that builds sandbox commands needs it. */
export const NODE_PATH = '/usr/bin/node';
