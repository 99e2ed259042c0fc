// The unmodified, published twilio-taskrouter worker SDK (pinned in package.json) against `trworker engine`:
// the SDK's event channel and REST envelope go to the engine's event bridge (ebServer/wsServer), the test's
// own set-up and the caller's side go to the engine's REST API with Basic auth, as an application's server
// would. The engine runs with a manual clock, so the reservation timeout is reached by moving time, not by
// waiting.
//
// Run: TRWORKER_BIN=target/debug/trworker node --test tests/sdk/worker.test.js (`npm ci` in tests/sdk first).

'use strict';

const { test, after } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawn } = require('node:child_process');
const { Worker } = require('twilio-taskrouter');

const ROOT = path.resolve(__dirname, '..', '..');
const BIN = process.env.TRWORKER_BIN || path.join(ROOT, 'target', 'debug', 'trworker');

/// Starts `trworker engine` on a free port with a manual clock; resolves with its local.env values.
async function startEngine() {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'trworker-sdk-'));
  const env = { ...process.env };
  for (const name of ['ACCOUNT_SID', 'AUTH_TOKEN', 'WORKSPACE_SID', 'PORT']) delete env[name];
  const child = spawn(BIN, ['engine', '--port', '0', '--data-dir', dataDir, '--seed', 'none', '--manual-clock'], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (d) => { output += d; });
  child.stderr.on('data', (d) => { output += d; });
  const envFile = path.join(dataDir, 'local.env');
  for (let i = 0; !fs.existsSync(envFile); i++) {
    if (child.exitCode !== null) throw new Error(`trworker engine exited early:\n${output}`);
    if (i > 1200) throw new Error('trworker engine did not write local.env within 60 s');
    await new Promise((r) => setTimeout(r, 50));
  }
  await new Promise((r) => setTimeout(r, 50)); // guards only a partial read of the file
  const values = Object.fromEntries(
    fs.readFileSync(envFile, 'utf8').split('\n').filter((l) => l.includes('=') && !l.startsWith('#'))
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  );
  return { child, dataDir, values };
}

/// An AccessToken with a TaskRouter grant, as twilio.jwt.AccessToken makes it, signed HS256 with the auth
/// token (the engine has no API Keys resource yet, so an SK issuer's secret is the auth token).
function accessToken({ accountSid, authToken, workspaceSid, workerSid, ttl = 3600, now }) {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const keySid = 'SK' + '0'.repeat(31) + '1';
  const header = { typ: 'JWT', alg: 'HS256', cty: 'twilio-fpa;v=1' };
  const payload = {
    jti: `${keySid}-${now}`, iss: keySid, sub: accountSid, iat: now, exp: now + ttl,
    grants: { identity: 'alice', task_router: { workspace_sid: workspaceSid, worker_sid: workerSid, role: 'worker' } },
  };
  const body = `${b64(header)}.${b64(payload)}`;
  const signature = crypto.createHmac('sha256', authToken).update(body).digest('base64url');
  return `${body}.${signature}`;
}

/// The next `name` event of `emitter`, or a failure after `ms`.
function once(emitter, name, ms = 10000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${name} within ${ms} ms`)), ms);
    emitter.once(name, (...args) => { clearTimeout(timer); resolve(args[0]); });
  });
}

let engine;
after(() => { if (engine) engine.child.kill(); });

test('a worker of the official SDK works a day against trworker engine', { timeout: 90000 }, async () => {
  engine = await startEngine();
  const { ACCOUNT_SID: accountSid, AUTH_TOKEN: authToken, TWILIO_TASKROUTER_URL: base } = engine.values;
  const auth = 'Basic ' + Buffer.from(`${accountSid}:${authToken}`).toString('base64');
  const rest = async (method, url, form) => {
    const response = await fetch(base + url, {
      method,
      headers: { Authorization: auth, 'Content-Type': 'application/x-www-form-urlencoded' },
      body: form ? new URLSearchParams(form).toString() : undefined,
    });
    const body = await response.json();
    assert.ok(response.ok, `${method} ${url}: ${response.status} ${JSON.stringify(body)}`);
    return body;
  };
  const advance = (seconds) => rest('POST', '/trworker/v1/Clock', { AdvanceSeconds: String(seconds) });

  // The application's set-up, over REST: a workspace, a support queue, a workflow with a 10 s reservation
  // timeout, and a worker who starts Offline.
  const ws = (await rest('POST', '/v1/Workspaces', { FriendlyName: 'sdk' })).sid;
  const activities = (await rest('GET', `/v1/Workspaces/${ws}/Activities`)).activities;
  const activity = (name) => activities.find((a) => a.friendly_name === name).sid;
  const queue = (await rest('POST', `/v1/Workspaces/${ws}/TaskQueues`, {
    FriendlyName: 'support', TargetWorkers: 'skills HAS "support"',
  })).sid;
  const workflow = (await rest('POST', `/v1/Workspaces/${ws}/Workflows`, {
    FriendlyName: 'main', TaskReservationTimeout: '10',
    Configuration: JSON.stringify({ task_routing: { filters: [], default_filter: { queue } } }),
  })).sid;
  const wk = (await rest('POST', `/v1/Workspaces/${ws}/Workers`, {
    FriendlyName: 'alice', ActivitySid: activity('Offline'),
    Attributes: JSON.stringify({ skills: ['support'], contact_uri: 'client:alice' }),
  })).sid;
  let call = 0;
  const createTask = () => rest('POST', `/v1/Workspaces/${ws}/Tasks`, {
    WorkflowSid: workflow,
    Attributes: JSON.stringify({
      type: 'support', from: '+15005550006', call_sid: 'CA' + String(++call).padStart(32, '0'),
    }),
  });

  const now = Math.floor(Date.now() / 1000);
  const token = accessToken({ accountSid, authToken, workspaceSid: ws, workerSid: wk, now });
  const wsServer = base.replace(/^http/, 'ws') + '/v1/wschannels';
  const worker = new Worker(token, { ebServer: `${base}/v1/wschannels`, wsServer, logLevel: 'error' });
  const errors = [];
  worker.on('error', (e) => errors.push(e));

  // Ready, with the workspace's activities; then Available.
  await once(worker, 'ready');
  assert.equal(worker.sid, wk);
  assert.equal(worker.workspaceSid, ws);
  assert.equal(worker.activities.size, activities.length);
  assert.equal(worker.activity.name, 'Offline');
  const updated = once(worker, 'activityUpdated');
  await worker.activities.get(activity('Available')).setAsCurrent();
  assert.equal((await updated).activity.name, 'Available');
  assert.equal(worker.available, true);

  // A task: reserved, answered with a conference, the call ends (REST), wrap-up, complete.
  let reserved = once(worker, 'reservationCreated');
  const first = await createTask();
  let reservation = await reserved;
  assert.equal(reservation.task.sid, first.sid);
  assert.equal(reservation.status, 'pending');
  assert.equal(reservation.task.attributes.type, 'support');
  let accepted = once(reservation, 'accepted');
  await reservation.conference();
  await accepted;
  assert.equal(reservation.status, 'accepted');
  const task = await rest('GET', `/v1/Workspaces/${ws}/Tasks/${first.sid}`);
  const conference = JSON.parse(task.attributes).conference.sid;
  const wrapup = once(reservation, 'wrapup');
  await rest('POST', `/2010-04-01/Accounts/${accountSid}/Conferences/${conference}.json`, { Status: 'completed' });
  await wrapup;
  assert.equal(reservation.task.status, 'wrapping');
  let completed = once(reservation, 'completed');
  await reservation.task.complete('handled');
  await completed;

  // A second task: accepted, wrapped up and completed by the worker.
  reserved = once(worker, 'reservationCreated');
  await createTask();
  reservation = await reserved;
  accepted = once(reservation, 'accepted');
  await reservation.accept();
  await accepted;
  await reservation.task.wrapUp();
  completed = once(reservation, 'completed');
  await reservation.task.complete('done');
  await completed;

  // A third task, rejected: the worker goes Offline with the reject, so the task waits.
  reserved = once(worker, 'reservationCreated');
  await createTask();
  reservation = await reserved;
  const rejected = once(reservation, 'rejected');
  await reservation.reject({ activitySid: activity('Offline') });
  await rejected;

  // Available again: a reservation the worker leaves to time out moves it to the timeout activity.
  reserved = once(worker, 'reservationCreated');
  await worker.activities.get(activity('Available')).setAsCurrent();
  reservation = await reserved;
  const timedOut = once(reservation, 'timeout');
  const wentAway = once(worker, 'activityUpdated');
  await advance(11);
  await timedOut;
  const moved = await wentAway;
  assert.equal(moved.available, false);

  // A new token, then a clean disconnect.
  worker.updateToken(accessToken({ accountSid, authToken, workspaceSid: ws, workerSid: wk, now: now + 1 }));
  const gone = once(worker, 'disconnected');
  worker.disconnect();
  await gone;
  assert.deepEqual(errors, []);
});
