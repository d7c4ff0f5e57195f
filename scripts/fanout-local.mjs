#!/usr/bin/env node
// The fan-out's state machine, run on this machine: the ASL taken from the CloudFormation template that
// `serverless package` wrote (never a copy), interpreted by aws-local-stepfunctions, each Task state
// running our Python handler locally (scripts/lambda_local.py) with this process's environment (the
// local stack's endpoint, settings and table names).
//
//   node scripts/fanout-local.mjs validate --template .serverless/cloudformation-template-update-stack.json
//   node scripts/fanout-local.mjs definition --template T      (the resolved ASL, as Step Functions gets it)
//   node scripts/fanout-local.mjs run --template T [--input FILE|-] [--param Name=Value]... [--events FILE]
//        [--logs FILE] [--python .venv/bin/python] [--retry-pause-ms N]
//
// `run` takes one execution's input per line (JSON Lines; or one JSON document) and runs them at once,
// sharing the functions' warm containers. It prints, one line per execution, its output (JSON) or
// {"Error", "Cause"} when it failed; it exits 0 when every execution succeeded, else 1. --events writes
// what happened: every Task invocation (state, function, range index or copy batch, outcome) and the engine's event log,
// per execution. Function logs go to --logs (else to stderr). --retry-pause-ms shortens every Retry's
// pause (the retries themselves are as defined).
//
// What aws-local-stepfunctions does with a Distributed Map (README, "Fan-out, locally"): it runs the
// ItemProcessor in-process like an inline Map (ProcessorConfig's Mode and ExecutionType are not
// interpreted: no child executions); MaxConcurrency is honoured; ToleratedFailureCount and
// ToleratedFailurePercentage are not read, and any failed item fails the Map at once, which is what a
// count of 0 means (AWS names that error States.ExceedToleratedFailureThreshold, the engine passes on
// the item's own error: our Catch is States.ALL either way). ItemReader, ItemBatcher and ResultWriter are
// not supported: a definition using them, or tolerating failures, is refused here rather than run
// differently from AWS.
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync, openSync, closeSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { StateMachine } from 'aws-local-stepfunctions';
import aslValidator from 'asl-validator';

// aws-local-stepfunctions 3 declares Node 22 for one call, Promise.withResolvers (ES2024): given here
// on Node 20 (its standard definition), so that the machine's Node (20, README) runs it.
if (typeof Promise.withResolvers !== 'function') {
  Promise.withResolvers = function withResolvers() {
    let resolvePromise;
    let rejectPromise;
    const promise = new this((res, rej) => { resolvePromise = res; rejectPromise = rej; });
    return { promise, resolve: resolvePromise, reject: rejectPromise };
  };
}

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const INVOKER = resolve(ROOT, 'scripts', 'lambda_local.py');
const ACCOUNT = '123456789012';
const KILL_GRACE_S = 5;

function parseArgs(argv) {
  const [command, ...rest] = argv;
  const options = { command, params: {} };
  for (let i = 0; i < rest.length; i += 1) {
    const flag = rest[i];
    const value = rest[i + 1];
    if (!flag.startsWith('--') || value === undefined) throw new Error(`bad argument ${flag}`);
    i += 1;
    if (flag === '--param') {
      const at = value.indexOf('=');
      options.params[value.slice(0, at)] = value.slice(at + 1);
    } else {
      options[flag.slice(2).replace(/-([a-z])/g, (_, c) => c.toUpperCase())] = value;
    }
  }
  if (!['validate', 'definition', 'run'].includes(command) || !options.template) {
    throw new Error('usage: fanout-local.mjs validate|definition|run --template TEMPLATE.json [options]');
  }
  return options;
}

// -- the template ------------------------------------------------------------------------------------

function loadTemplate(path, params, region) {
  const template = JSON.parse(readFileSync(path, 'utf8'));
  const resources = template.Resources;
  const machines = Object.entries(resources).filter(([, r]) => r.Type === 'AWS::StepFunctions::StateMachine');
  if (machines.length !== 1) throw new Error(`expected one state machine in ${path}, found ${machines.length}`);
  const [machineName, machine] = machines[0];
  const functions = {};
  for (const [name, resource] of Object.entries(resources)) {
    if (resource.Type !== 'AWS::Lambda::Function') continue;
    const p = resource.Properties;
    const arn = `arn:aws:lambda:${region}:${ACCOUNT}:function:${p.FunctionName}`;
    functions[arn] = { resource: name, name: p.FunctionName, handler: p.Handler, timeout: p.Timeout ?? 3,
                       memory: p.MemorySize ?? 1024 };
  }
  const parameters = {};
  for (const [name, p] of Object.entries(template.Parameters ?? {})) parameters[name] = p.Default;
  Object.assign(parameters, params);
  const context = { resources, functions, parameters, region };
  const definition = JSON.parse(resolveSub(machine.Properties.DefinitionString, context));
  return { machineName, definition, functions };
}

function pseudo(name, context) {
  return { 'AWS::Region': context.region, 'AWS::AccountId': ACCOUNT, 'AWS::Partition': 'aws',
           'AWS::URLSuffix': 'amazonaws.com', 'AWS::StackName': 'local' }[name];
}

// Fn::Sub as CloudFormation evaluates it: ${Param}, ${AWS::...}, ${Resource.Attribute} (a function's
// Arn), ${Var} from the optional map, and ${!Literal}.
function resolveSub(node, context) {
  if (typeof node === 'string') return node;
  const sub = node['Fn::Sub'];
  if (sub === undefined) throw new Error(`the definition is not a string or Fn::Sub: ${JSON.stringify(node)}`);
  const [text, variables] = Array.isArray(sub) ? sub : [sub, {}];
  return text.replace(/\$\{([^}]+)\}/g, (_, name) => {
    if (name.startsWith('!')) return `\${${name.slice(1)}}`;
    if (name in variables) return String(resolveValue(variables[name], context));
    if (pseudo(name, context) !== undefined) return pseudo(name, context);
    if (name in context.parameters) return String(context.parameters[name]);
    const [resource, attribute] = name.split('.');
    if (attribute === 'Arn' && context.resources[resource]?.Type === 'AWS::Lambda::Function') {
      return `arn:aws:lambda:${context.region}:${ACCOUNT}:function:${context.resources[resource].Properties.FunctionName}`;
    }
    throw new Error(`cannot resolve \${${name}} in the state machine's definition`);
  });
}

function resolveValue(node, context) {
  if (typeof node !== 'object' || node === null) return node;
  if ('Fn::GetAtt' in node) return resolveSub(`\${${node['Fn::GetAtt'].join('.')}}`, context);
  if ('Ref' in node) return resolveSub(`\${${node.Ref}}`, context);
  if ('Fn::Sub' in node) return resolveSub(node, context);
  throw new Error(`unsupported intrinsic ${JSON.stringify(node)}`);
}

// Every Task state, at any depth (Map item processors, Parallel branches), with its definition.
function* taskStates(states) {
  for (const [name, state] of Object.entries(states)) {
    if (state.Type === 'Task') yield [name, state];
    const inner = state.ItemProcessor ?? state.Iterator;
    if (inner) yield* taskStates(inner.States);
    for (const branch of state.Branches ?? []) yield* taskStates(branch.States);
  }
}

function* mapStates(states) {
  for (const [name, state] of Object.entries(states)) {
    if (state.Type === 'Map') {
      yield [name, state];
      yield* mapStates((state.ItemProcessor ?? state.Iterator).States);
    }
    for (const branch of state.Branches ?? []) yield* mapStates(branch.States);
  }
}

// What the local engine cannot run as AWS would is refused, not silently run differently.
function checkSupported(definition) {
  const notes = [];
  for (const [name, map] of mapStates(definition.States)) {
    for (const field of ['ItemReader', 'ItemBatcher', 'ResultWriter']) {
      if (field in map) throw new Error(`Map ${name}: ${field} is not supported by the local engine`);
    }
    if ((map.ToleratedFailureCount ?? 0) !== 0 || (map.ToleratedFailurePercentage ?? 0) !== 0) {
      throw new Error(`Map ${name}: the local engine fails a Map on its first failed item; only a tolerated ` +
                      'failure count of 0 runs here as on AWS');
    }
    const mode = map.ItemProcessor?.ProcessorConfig?.Mode ?? 'INLINE';
    notes.push(`${name}: ${mode} Map run in-process (items as inline iterations), ` +
               `MaxConcurrency ${map.MaxConcurrency ?? 'unlimited (engine default 40)'}`);
  }
  return notes;
}

// -- running a Task: our Python handler, as Lambda runs it ------------------------------------------------

// Warm containers, as Lambda keeps them: one Python process per concurrent invocation of a function,
// reused for the next one (the handler imported once); one that overruns its timeout is killed.
class Containers {
  constructor(fn, options) {
    this.fn = fn;
    this.options = options;
    this.idle = [];
    this.all = new Set();
  }

  spawn() {
    const child = spawn(this.options.python, [INVOKER, this.fn.handler, '--function-name', this.fn.name,
                                              '--timeout', String(this.fn.timeout), '--memory',
                                              String(this.fn.memory)],
                        { cwd: ROOT, env: process.env, stdio: ['pipe', this.options.logFd, this.options.logFd, 'pipe'] });
    const container = { child, buffer: '', waiting: null, dead: false, timedOut: false };
    child.stdio[3].setEncoding('utf8');
    child.stdio[3].on('data', (chunk) => {
      container.buffer += chunk;
      let end = container.buffer.indexOf('\n');
      while (end >= 0) {
        const line = container.buffer.slice(0, end);
        container.buffer = container.buffer.slice(end + 1);
        const waiting = container.waiting;
        container.waiting = null;
        if (waiting) waiting(JSON.parse(line));
        end = container.buffer.indexOf('\n');
      }
    });
    child.on('close', (code, signal) => {
      container.dead = true;
      this.all.delete(container);
      const waiting = container.waiting;
      container.waiting = null;
      if (!waiting) return;
      waiting(container.timedOut
        ? { errorType: 'Sandbox.Timedout', errorMessage: `Task timed out after ${this.fn.timeout} seconds` }
        : { errorType: 'Runtime.ExitError', errorMessage: `the function's process exited (${code ?? signal})` });
    });
    this.all.add(container);
    return container;
  }

  async invoke(input) {
    const container = this.idle.pop() ?? this.spawn();
    const outcome = await new Promise((resolveOutcome) => {
      container.waiting = resolveOutcome;
      container.timer = setTimeout(() => {
        container.timedOut = true;
        container.child.kill('SIGKILL');
      }, (this.fn.timeout + KILL_GRACE_S) * 1000);
      container.child.stdin.write(`${JSON.stringify(input)}\n`);
    });
    clearTimeout(container.timer);
    if (!container.dead) this.idle.push(container);
    return outcome;
  }

  async close() {
    const exits = [...this.all].map((c) => new Promise((done) => { c.child.on('close', done); c.child.stdin.end(); }));
    await Promise.all(exits);
  }
}

function overrides(definition, functions, options, invocations, pools) {
  const handlers = {};
  for (const [name, state] of taskStates(definition.States)) {
    const fn = functions[state.Resource];
    if (!fn) throw new Error(`Task ${name}: ${state.Resource} is none of the template's functions`);
    if (!pools.has(fn.name)) pools.set(fn.name, new Containers(fn, options));
    const pool = pools.get(fn.name);
    handlers[name] = async (input) => {
      const started = Date.now();
      const outcome = await pool.invoke(input);
      invocations.push({ state: name, function: fn.name,
                         index: input?.item?.index ?? input?.item?.batch ?? null,
                         ok: !('errorType' in outcome), errorType: outcome.errorType ?? null,
                         ms: Date.now() - started });
      if ('errorType' in outcome) {
        const error = new Error(outcome.errorMessage);
        error.name = outcome.errorType;
        throw error;
      }
      return outcome.result;
    };
  }
  return handlers;
}

function retryPauses(definition, ms) {
  if (ms === undefined) return undefined;
  const pauses = {};
  const visit = (states) => {
    for (const [name, state] of Object.entries(states)) {
      if (state.Retry) pauses[name] = Number(ms);
      const inner = state.ItemProcessor ?? state.Iterator;
      if (inner) visit(inner.States);
    }
  };
  visit(definition.States);
  return pauses;
}

async function main() {
  const options = parseArgs(process.argv.slice(2));
  const region = process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? 'us-east-1';
  const { machineName, definition, functions } = loadTemplate(options.template, options.params, region);
  const validation = aslValidator(definition, { checkArn: true, checkPaths: true });
  if (!validation.isValid) {
    process.stderr.write(`${machineName}: the definition is not valid ASL:\n${validation.errorsText('\n')}\n`);
    process.exit(2);
  }
  if (options.command === 'definition') {
    process.stdout.write(`${JSON.stringify(definition, null, 1)}\n`);
    return;
  }
  if (options.command === 'validate') {
    process.stdout.write(`${JSON.stringify({ stateMachine: machineName, valid: true,
                                             states: Object.keys(definition.States) })}\n`);
    return;
  }
  const notes = checkSupported(definition);
  for (const note of notes) process.stderr.write(`[fanout-local] ${note}\n`);
  options.python = options.python ?? resolve(ROOT, '.venv', 'bin', 'python');
  const inputs = readInputs(!options.input || options.input === '-' ? readFileSync(0, 'utf8')
                                                                    : readFileSync(options.input, 'utf8'));
  const pools = new Map();
  options.logFd = options.logs ? openSync(options.logs, 'a') : 2;
  // Executions run at once and share the functions' warm containers, as on Lambda.
  const executions = await Promise.all(inputs.map((input, i) => execute(definition, functions, options, pools,
                                                                        input, `local-${i + 1}`)));
  await Promise.all([...pools.values()].map((pool) => pool.close()));
  if (options.logs) closeSync(options.logFd);
  if (options.events) {
    writeFileSync(options.events, JSON.stringify({ stateMachine: machineName, notes, executions }, null, 1));
  }
  for (const execution of executions) {
    process.stdout.write(`${JSON.stringify(execution.failed ?? execution.output)}\n`);
  }
  process.exit(executions.some((execution) => execution.failed) ? 1 : 0);
}

// One execution's input per line (JSON Lines), or one JSON document over several lines.
function readInputs(text) {
  const lines = text.split('\n').filter((line) => line.trim());
  try {
    return lines.map((line) => JSON.parse(line));
  } catch {
    return [JSON.parse(text)];
  }
}

async function execute(definition, functions, options, pools, input, name) {
  const invocations = [];
  const machine = new StateMachine(definition, { validationOptions: { checkArn: true, checkPaths: true } });
  const execution = machine.run(input, {
    overrides: { taskResourceLocalHandlers: overrides(definition, functions, options, invocations, pools),
                 retryIntervalOverrides: retryPauses(definition, options.retryPauseMs) },
    context: { Execution: { Input: input, Name: name, StartTime: new Date().toISOString() } },
  });
  const events = [];
  const collecting = (async () => { for await (const event of execution.eventLogs) events.push(event); })();
  let output = null;
  let failed = null;
  try {
    output = await execution.result;
  } catch (error) {
    failed = { Error: error.cause?.name ?? error.name, Cause: error.cause?.message ?? error.message };
  }
  await Promise.race([collecting, new Promise((r) => { setTimeout(r, 1000); })]);
  return { name, invocations, events, failed, output };
}

main().catch((error) => {
  process.stderr.write(`[fanout-local] ${error.stack ?? error}\n`);
  process.exit(3);
});
