'use strict';

// A local plugin (serverless.yml, plugins): once the artifact is built (and, the plugin being listed
// after it, serverless-python-requirements has added the dependencies), add bytecode compiled by the
// Lambda runtime's Python to it (scripts/bytecode.py says why). That Python is `runtime_python`
// (--param or environment variable), else `python3.12` on PATH; without it the artifact stays as it is,
// valid but slower to start, and the framework says so.
const { execFileSync } = require('child_process');
const fs = require('fs');
const path = require('path');

class RuntimeBytecode {
  constructor(serverless, options, { log } = {}) {
    this.serverless = serverless;
    this.options = options;
    this.log = log || { notice: console.log, warning: console.warn };
    this.hooks = { 'after:package:createDeploymentArtifacts': () => this.compile() };
  }

  compile() {
    const sls = this.serverless;
    const artifact =
      sls.service.package.artifact ||
      path.join(this.options.package || path.join(sls.serviceDir, '.serverless'), `${sls.service.service}.zip`);
    if (!fs.existsSync(artifact)) {
      this.log.warning(`bytecode: no artifact at ${artifact}; nothing compiled`);
      return;
    }
    const params = this.options.param || [];
    const fromParam = params.map((p) => p.split('=')).find(([name]) => name === 'runtime_python');
    const python = (fromParam && fromParam.slice(1).join('=')) || process.env.runtime_python || 'python3.12';
    const script = path.join(__dirname, 'bytecode.py');
    try {
      const out = execFileSync(python, ['-I', script, artifact], { encoding: 'utf8' });
      this.log.notice(out.trim());
    } catch (error) {
      if (error.code === 'ENOENT') {
        this.log.warning(`bytecode: ${python} not found; the artifact carries no bytecode (slower cold starts)`);
        return;
      }
      throw error;
    }
  }
}

module.exports = RuntimeBytecode;
