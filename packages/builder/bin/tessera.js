#!/usr/bin/env node
'use strict';
// Node 22 keeps compiled code between runs (in the OS temp dir): a warm build is mostly start-up.
require('node:module').enableCompileCache?.();
require('../dist/cli/main.js')
  .main(process.argv.slice(2))
  .then((code) => { process.exitCode = code; });
