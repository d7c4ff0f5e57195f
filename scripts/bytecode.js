'use strict';

// A local plugin (serverless.yml, plugins): once the artifact is built (and, the plugin being listed
// after it, serverless-python-requirements has added the dependencies), add bytecode compiled by the
// Lambda runtime's Python to it (scripts/bytecode.py says why).
//
// Which Python: `runtime_python` (--param or environment variable) if named, and then only that one;
// else the first of these that starts and is the runtime's version (provider.runtime, python3.12):
// `python3.12` on PATH, pyenv's installed 3.12.x (`$PYENV_ROOT`, else `pyenv root`, else ~/.pyenv;
// newest first), `uv python find 3.12`. Each is probed first (it must run and report the runtime's
// bytecode tag, cpython-312), because a `python3.12` that exists need not start: a pyenv shim for a
// version installed but not selected exits 127 ("pyenv: python3.12: command not found").
//
// The bytecode is an optional speed-up, so packaging never fails for want of an interpreter: none
// found, or none that starts, is a warning and an artifact without bytecode (valid, slower to start).
// Once a probed interpreter runs scripts/bytecode.py, though, a failure is the artifact's or the
// script's (a damaged zip entry, a full disk), not the interpreter's: that stops the build, since
// the zip may be half-rewritten and a damaged artifact must not be deployed.
const { execFileSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');

const PROBE_TIMEOUT_MS = 30 * 1000;
const COMPILE_TIMEOUT_MS = 10 * 60 * 1000; // ~10,000 modules: under a minute on a busy 2-core machine

function firstLine(text) {
  return String(text || '').trim().split('\n')[0].slice(0, 200);
}

function whyNot(error) {
  if (error.code === 'ENOENT') return 'not found';
  if (error.code === 'EACCES') return 'not executable';
  if (error.code === 'ETIMEDOUT' || error.signal === 'SIGTERM') return 'did not answer in time';
  const said = firstLine(error.stderr) || firstLine(error.stdout);
  const how = error.status != null ? `exit ${error.status}` : `signal ${error.signal || error.code}`;
  return said ? `${how}: "${said}"` : how;
}

// "3.12.10" sorts after "3.12.9".
function byVersionDescending(a, b) {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i += 1) {
    if ((pa[i] || 0) !== (pb[i] || 0)) return (pb[i] || 0) - (pa[i] || 0);
  }
  return 0;
}

class RuntimeBytecode {
  constructor(serverless, options, { log } = {}) {
    this.serverless = serverless;
    this.options = options || {};
    this.log = log || { notice: console.log, warning: console.warn };
    this.hooks = { 'after:package:createDeploymentArtifacts': () => this.compile() };
  }

  get version() {
    const provider = this.serverless.service.provider || {};
    const match = /^python(\d+\.\d+)$/.exec(provider.runtime || '');
    return match ? match[1] : '3.12';
  }

  get cacheTag() {
    return `cpython-${this.version.replace('.', '')}`;
  }

  named() {
    const params = this.options.param || [];
    const fromParam = params.map((p) => p.split('=')).find(([name]) => name === 'runtime_python');
    return (fromParam && fromParam.slice(1).join('=')) || process.env.runtime_python || '';
  }

  pyenvRoot() {
    if (process.env.PYENV_ROOT) return process.env.PYENV_ROOT;
    try {
      const root = execFileSync('pyenv', ['root'], {
        encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: PROBE_TIMEOUT_MS,
      }).trim();
      if (root) return root;
    } catch (error) {
      // no pyenv on PATH (or it failed): its default root may still hold versions
    }
    return path.join(os.homedir(), '.pyenv');
  }

  // [{ python, source }] in the order tried; `missing` collects the places that offered none.
  candidates(missing) {
    const named = this.named();
    if (named) return [{ python: named, source: 'runtime_python' }];
    const version = this.version;
    const found = [{ python: `python${version}`, source: 'PATH' }];
    const versions = path.join(this.pyenvRoot(), 'versions');
    const installed = fs.existsSync(versions)
      ? fs.readdirSync(versions).filter((name) => name === version || name.startsWith(`${version}.`))
        .filter((name) => /^\d+(\.\d+)*$/.test(name)).sort(byVersionDescending)
      : [];
    if (installed.length === 0) missing.push(`no ${version} under ${versions}`);
    for (const name of installed) {
      found.push({ python: path.join(versions, name, 'bin', `python${version}`), source: 'pyenv' });
    }
    try {
      const uvFound = execFileSync('uv', ['python', 'find', version], {
        encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: PROBE_TIMEOUT_MS,
      }).trim();
      if (uvFound) found.push({ python: uvFound, source: 'uv python find' });
    } catch (error) {
      missing.push(`uv python find ${version}: ${whyNot(error)}`);
    }
    return found;
  }

  // The reason this interpreter cannot be used, or '' when it starts and is the runtime's version.
  probe(python) {
    try {
      const tag = execFileSync(python, ['-I', '-c', 'import sys; print(sys.implementation.cache_tag)'], {
        encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: PROBE_TIMEOUT_MS,
      }).trim();
      return tag === this.cacheTag ? '' : `is ${tag || 'not CPython'}, not ${this.cacheTag}`;
    } catch (error) {
      return whyNot(error);
    }
  }

  findPython() {
    const tried = [];
    const missing = [];
    const seen = new Set();
    for (const { python, source } of this.candidates(missing)) {
      if (seen.has(python)) continue;
      seen.add(python);
      const reason = this.probe(python);
      if (!reason) return { python, source, tried };
      tried.push(`${python} (${source}): ${reason}`);
    }
    return { python: null, tried: tried.concat(missing) };
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
    const { python, source, tried } = this.findPython();
    if (!python) {
      this.log.warning(
        `bytecode: no Python ${this.version} could start (${tried.join('; ')}). The artifact carries no ` +
        'bytecode: it is valid, but every cold start compiles the modules it imports (about 2.5x the ' +
        `import time). Name one with --param runtime_python=/path/to/python${this.version}.`,
      );
      return;
    }
    const skipped = tried.length ? ` (not: ${tried.join('; ')})` : '';
    this.log.notice(`bytecode: compiling with ${python} (${source})${skipped}`);
    const script = path.join(__dirname, 'bytecode.py');
    try {
      const out = execFileSync(python, ['-I', script, artifact], {
        encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: COMPILE_TIMEOUT_MS,
      });
      this.log.notice(out.trim());
    } catch (error) {
      // The interpreter started a moment ago: this is the artifact's failure (or the script's), and the
      // zip may be half-rewritten. Stop rather than deploy it.
      const stderr = String(error.stderr || '').trim().split('\n').slice(-8).join('\n');
      throw new Error(`bytecode: ${python} -I ${script} ${artifact} failed (${whyNot(error)}); the artifact ` +
        `may be damaged, so packaging stops:\n${stderr}`);
    }
  }
}

module.exports = RuntimeBytecode;
