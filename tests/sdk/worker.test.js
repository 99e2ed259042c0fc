// The unmodified, published twilio-taskrouter worker SDK (pinned in package.json) against `trworker engine`:
// the SDK's event channel and REST envelope go to the engine's event bridge (ebServer/wsServer), the test's
// own set-up and the caller's side go to the engine's REST API with Basic auth, as an application's server
// would. The engine runs with a manual clock, so the reservation timeout is reached by moving time, not by
// waiting. Five tests, each on an engine of its own: a worker's day; a token update (the one real wait: a
// token's few seconds, to show the channel outlives them); a reconnect across an engine restart on the same
// port and data directory; a supervisor (`Supervisor`) monitoring a worker's call and the workspace read with
// a workspace token (`Workspace`); task transfers (`Task.transfer`, `OutgoingTransfer.cancel`).
//
// Run: TRWORKER_BIN=target/debug/trworker node --test --test-force-exit tests/sdk/worker.test.js (`npm ci` in
// tests/sdk first).

'use strict';

const { test, after } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawn } = require('node:child_process');
const { Supervisor, Worker, Workspace } = require('twilio-taskrouter');
// The SDK's own WebSocket client (its dependency), for a second socket beside the SDK's.
const WebSocket = require('ws');

const ROOT = path.resolve(__dirname, '..', '..');
const BIN = process.env.TRWORKER_BIN || path.join(ROOT, 'target', 'debug', 'trworker');

/// Starts `trworker engine` with a manual clock, on a free port in a new data directory, or on `port` in
/// `dataDir` to restart one; resolves once it has said it listens (its first line), with its local.env.
async function startEngine({ dataDir, port = 0 } = {}) {
  dataDir = dataDir || fs.mkdtempSync(path.join(os.tmpdir(), 'trworker-sdk-'));
  const env = { ...process.env };
  for (const name of ['ACCOUNT_SID', 'AUTH_TOKEN', 'WORKSPACE_SID', 'PORT']) delete env[name];
  const args = ['engine', '--port', String(port), '--data-dir', dataDir, '--seed', 'none', '--manual-clock'];
  const child = spawn(BIN, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const exited = new Promise((resolve) => child.once('exit', resolve));
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`trworker engine did not start within 60 s:\n${output}`)), 60000);
    child.stdout.on('data', (d) => {
      output += d;
      // Printed once the server listens and local.env is written (cli.rs `run_engine`).
      if (output.includes('local TaskRouter engine at')) { clearTimeout(timer); resolve(); }
    });
    child.stderr.on('data', (d) => { output += d; });
    exited.then((code) => { clearTimeout(timer); reject(new Error(`trworker engine exited (${code}):\n${output}`)); });
  });
  const values = Object.fromEntries(
    fs.readFileSync(path.join(dataDir, 'local.env'), 'utf8').split('\n')
      .filter((l) => l.includes('=') && !l.startsWith('#'))
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  );
  const stop = async () => { if (child.exitCode === null) { child.kill('SIGTERM'); await exited; } };
  return { child, dataDir, values, stop, port: Number(new URL(values.TWILIO_TASKROUTER_URL).port) };
}

/// An AccessToken with a TaskRouter grant, as twilio.jwt.AccessToken makes it, signed HS256 with the auth
/// token (an SK issuer the engine's Keys resource does not know is checked with the auth token). A workspace
/// token (`role: 'admin'`) names no worker.
function accessToken({ accountSid, authToken, workspaceSid, workerSid, role = 'worker', ttl = 3600, now }) {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const keySid = 'SK' + '0'.repeat(31) + '1';
  const header = { typ: 'JWT', alg: 'HS256', cty: 'twilio-fpa;v=1' };
  const payload = {
    jti: `${keySid}-${now}`, iss: keySid, sub: accountSid, iat: now, exp: now + ttl,
    grants: { identity: 'alice', task_router: { workspace_sid: workspaceSid, worker_sid: workerSid, role } },
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

/// Creates a task with `createTask` and waits for `worker`'s offer of it: the task and the reservation.
async function offered(worker, createTask) {
  const reserved = once(worker, 'reservationCreated');
  const task = await createTask();
  return { task, reservation: await reserved };
}

/// Answers `reservation` (`how`: 'accept', or 'conference' for the conference instruction) and waits for its
/// `accepted`.
async function answer(reservation, how = 'conference') {
  const accepted = once(reservation, 'accepted');
  await reservation[how]();
  await accepted;
}

/// Collects `workers`' errors and waits until each is ready; answers the list the errors go to.
async function allReady(workers) {
  const errors = [];
  for (const w of workers) w.on('error', (e) => errors.push(e));
  await Promise.all(workers.map((w) => once(w, 'ready')));
  return errors;
}

/// Disconnects `workers`, each seen to disconnect, and checks that none reported an error.
async function disconnect(workers, errors) {
  const gone = workers.map((w) => once(w, 'disconnected'));
  for (const w of workers) w.disconnect();
  await Promise.all(gone);
  assert.deepEqual(errors, []);
}

/// Counts `names` events of `emitter`.
function counter(emitter, names) {
  const counts = Object.fromEntries(names.map((n) => [n, 0]));
  for (const n of names) emitter.on(n, () => { counts[n] += 1; });
  return counts;
}

/// The application's set-up on `engine`, over REST: a workspace, a support queue, a workflow with a
/// `reservationTimeout` (s), and a worker who starts Offline. Answers what the tests use.
async function setUp(engine, { reservationTimeout = 10 } = {}) {
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
  const ws = (await rest('POST', '/v1/Workspaces', { FriendlyName: 'sdk' })).sid;
  const activities = (await rest('GET', `/v1/Workspaces/${ws}/Activities`)).activities;
  const activity = (name) => activities.find((a) => a.friendly_name === name).sid;
  const queue = (await rest('POST', `/v1/Workspaces/${ws}/TaskQueues`, {
    FriendlyName: 'support', TargetWorkers: 'skills HAS "support"',
  })).sid;
  const workflow = (await rest('POST', `/v1/Workspaces/${ws}/Workflows`, {
    FriendlyName: 'main', TaskReservationTimeout: String(reservationTimeout),
    Configuration: JSON.stringify({ task_routing: { filters: [], default_filter: { queue } } }),
  })).sid;
  // A worker, Offline, with `attributes`; answers its SID.
  const addWorker = async (name, attributes) => (await rest('POST', `/v1/Workspaces/${ws}/Workers`, {
    FriendlyName: name, ActivitySid: activity('Offline'), Attributes: JSON.stringify(attributes),
  })).sid;
  const wk = await addWorker('alice', { skills: ['support'], contact_uri: 'client:alice' });
  let call = 0;
  const createTask = () => rest('POST', `/v1/Workspaces/${ws}/Tasks`, {
    WorkflowSid: workflow,
    Attributes: JSON.stringify({
      type: 'support', from: '+15005550006', call_sid: 'CA' + String(++call).padStart(32, '0'),
    }),
  });
  // The engine's clock (manual: it moves only when a test moves it), in seconds, for tokens.
  const clock = async () => Math.floor((await advance(0)).now / 1000);
  const token = async ({ ttl = 3600, secret = authToken, workerSid = wk, role = 'worker' } = {}) => accessToken({
    accountSid, authToken: secret, workspaceSid: ws, workerSid, role, ttl, now: await clock(),
  });
  const wsServer = base.replace(/^http/, 'ws') + '/v1/wschannels';
  const options = { ebServer: `${base}/v1/wschannels`, wsServer, logLevel: 'error' };
  const worker = (t) => new Worker(t, options);
  return {
    accountSid, authToken, base, rest, advance, clock, ws, activities, activity, queue, addWorker, wk, createTask,
    token, wsServer, options, worker,
  };
}

const engines = [];
after(async () => {
  for (const e of engines) await e.stop();
  // The data directories are the tests' own: none is left behind in the temporary directory.
  for (const dir of new Set(engines.map((e) => e.dataDir))) fs.rmSync(dir, { recursive: true, force: true });
});

test('a worker of the official SDK works a day against trworker engine', { timeout: 60000 }, async () => {
  const engine = await startEngine();
  engines.push(engine);
  const { accountSid, rest, advance, ws, activities, activity, wk, createTask, token, worker: newWorker } =
    await setUp(engine);
  const worker = newWorker(await token());
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
  const { task: first, reservation: offer } = await offered(worker, createTask);
  let reservation = offer;
  assert.equal(reservation.task.sid, first.sid);
  assert.equal(reservation.status, 'pending');
  assert.equal(reservation.task.attributes.type, 'support');
  await answer(reservation);
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
  ({ reservation } = await offered(worker, createTask));
  await answer(reservation, 'accept');
  await reservation.task.wrapUp();
  completed = once(reservation, 'completed');
  await reservation.task.complete('done');
  await completed;

  // A third task, rejected: the worker goes Offline with the reject, so the task waits.
  ({ reservation } = await offered(worker, createTask));
  const rejected = once(reservation, 'rejected');
  await reservation.reject({ activitySid: activity('Offline') });
  await rejected;

  // Available again: a reservation the worker leaves to time out moves it to the timeout activity.
  const reserved = once(worker, 'reservationCreated');
  await worker.activities.get(activity('Available')).setAsCurrent();
  reservation = await reserved;
  const timedOut = once(reservation, 'timeout');
  const wentAway = once(worker, 'activityUpdated');
  await advance(11);
  await timedOut;
  const moved = await wentAway;
  assert.equal(moved.available, false);

  await disconnect([worker], errors);
});

// `updateToken` sends nothing on the socket: the SDK keeps the new token for its later REST envelopes (and
// reconnects), so that is where the engine takes it from. The channel's expiry moves to the new token's; a
// bad token is refused on the envelope (401) and changes nothing.
test('a token update, then disconnect', { timeout: 30000 }, async () => {
  const engine = await startEngine();
  engines.push(engine);
  const { accountSid, authToken, clock, rest, ws, activity, wk, createTask, token, wsServer, worker: newWorker } =
    await setUp(engine);
  // A first token with 4 s left (so the SDK says `tokenExpired` at once: it warns 5 s ahead).
  const worker = newWorker(await token({ ttl: 4 }));
  const errors = [];
  worker.on('error', (e) => errors.push(e));
  const counts = counter(worker, ['disconnected']);
  await once(worker, 'ready');

  // A witness: another worker's channel, with a token 2 s longer (another worker's, so the update below does
  // not move it). When the engine closes it for expiry, the first token's time is over too, whatever the
  // machine's speed: both deadlines are on the engine's timers, 2 s apart.
  const bob = (await rest('POST', `/v1/Workspaces/${ws}/Workers`, { FriendlyName: 'bob' })).sid;
  const bobToken = accessToken({ accountSid, authToken, workspaceSid: ws, workerSid: bob, ttl: 6, now: await clock() });
  const witness = new WebSocket(`${wsServer}?token=${bobToken}&closeExistingSessions=false`);
  const witnessClosed = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the witness channel did not close within 20 s')), 20000);
    witness.on('close', (code, reason) => { clearTimeout(timer); resolve({ code, reason: String(reason) }); });
  });

  worker.updateToken(await token({ ttl: 3600 }));
  // The next envelope carries the new token.
  const updated = once(worker, 'activityUpdated');
  await worker.activities.get(activity('Available')).setAsCurrent();
  await updated;
  const closed = await witnessClosed;
  assert.equal(closed.code, 4001, closed.reason);
  assert.equal(counts.disconnected, 0, 'the channel outlived the first token');
  const reserved = once(worker, 'reservationCreated');
  const task = await createTask();
  assert.equal((await reserved).task.sid, task.sid);

  // A bad token is refused where it is used, and the channel goes on as before.
  worker.updateToken(await token({ secret: 'not the auth token' }));
  await assert.rejects(worker.fetchLatestVersion(), /401.*Invalid token/);
  const changed = once(worker, 'attributesUpdated');
  await rest('POST', `/v1/Workspaces/${ws}/Workers/${wk}`, {
    Attributes: JSON.stringify({ skills: ['support'], contact_uri: 'client:alice', desk: 7 }),
  });
  assert.equal((await changed).attributes.desk, 7);
  assert.equal(counts.disconnected, 0);

  await disconnect([worker], errors);
});

// The engine stops and starts again on the same port and data directory; the SDK, untouched, reconnects by
// itself (it retries about once a second) and gets `ready` again. Events after the restart arrive once, and
// nothing from before comes again: the channel follows the engine's live stream and never replays it; the
// SDK re-reads its state with REST on the new `init`.
test('a reconnect across an engine restart, with no event lost or doubled', { timeout: 40000 }, async () => {
  let engine = await startEngine();
  engines.push(engine);
  // A reservation must not time out while the engine is down: the manual clock restarts at the wall clock.
  const { activity, createTask, token, worker: newWorker } = await setUp(engine, { reservationTimeout: 3600 });
  const worker = newWorker(await token());
  const errors = [];
  worker.on('error', (e) => errors.push(e));
  const counts = counter(worker, ['ready', 'disconnected', 'reservationCreated', 'activityUpdated']);
  const created = [];
  worker.on('reservationCreated', (r) => created.push(r.task.sid));

  await once(worker, 'ready');
  const available = once(worker, 'activityUpdated');
  await worker.activities.get(activity('Available')).setAsCurrent();
  await available;
  const { task: before, reservation } = await offered(worker, createTask);
  await answer(reservation, 'accept');
  await reservation.task.wrapUp();
  const completed = once(reservation, 'completed');
  await reservation.task.complete('done');
  await completed;

  // Stop (the channel closes as the engine stops), then start on the same port and data directory.
  const gone = once(worker, 'disconnected');
  await engine.stop();
  await gone;
  const back = once(worker, 'ready', 30000);
  engine = await startEngine({ dataDir: engine.dataDir, port: engine.port });
  engines.push(engine);
  await back;
  assert.equal(worker.activity.name, 'Available', 'the state came back from the data directory');

  // A task after the restart: its reservation arrives once. The accept's event comes after it on the same
  // ordered channel, so a second copy would have arrived by then.
  const { task: after, reservation: again } = await offered(worker, createTask);
  assert.equal(again.task.sid, after.sid);
  await answer(again, 'accept');
  assert.deepEqual(created, [before.sid, after.sid]);
  // `disconnected` is not counted exactly: each reconnect the SDK tries while the engine is down says it again.
  const { disconnected, ...others } = counts;
  assert.ok(disconnected >= 1);
  assert.deepEqual(others, { ready: 2, reservationCreated: 2, activityUpdated: 1 });

  const bye = once(worker, 'disconnected');
  worker.disconnect();
  await bye;
  // While the engine was down, each refused reconnect is a connection error, and nothing else is.
  assert.deepEqual([...new Set(errors.map((e) => e.name))].filter((n) => n !== 'GATEWAY_CONNECTION_FAILED'), []);
});

// The SDK's Supervisor (a worker whose grant's role is supervisor) monitors a call with the supervise
// instruction: its leg joins the task's conference, muted. The SDK's Workspace, with a token naming no worker,
// reads the workspace's workers (also ordered, paged by NextToken), queues and a task.
test('a supervisor monitors a call, and a workspace token reads the workspace', { timeout: 30000 }, async () => {
  const engine = await startEngine();
  engines.push(engine);
  const { accountSid, rest, ws, activity, queue, addWorker, wk, createTask, token, options, worker: newWorker } =
    await setUp(engine);
  const sam = await addWorker('sam', { contact_uri: 'client:sam' });
  const supervisor = new Supervisor(await token({ workerSid: sam, role: 'supervisor' }), options);
  const worker = newWorker(await token());
  const errors = await allReady([supervisor, worker]);

  // Alice takes a call.
  await worker.activities.get(activity('Available')).setAsCurrent();
  const { task: created, reservation } = await offered(worker, createTask);
  await answer(reservation);

  // Sam monitors it: a muted leg labelled supervisor, dialled at Sam's contact_uri.
  await supervisor.monitor(created.sid, reservation.sid);
  const task = await rest('GET', `/v1/Workspaces/${ws}/Tasks/${created.sid}`);
  const conference = JSON.parse(task.attributes).conference.sid;
  const legs = (await rest('GET', `/2010-04-01/Accounts/${accountSid}/Conferences/${conference}/Participants.json`))
    .participants;
  const leg = legs.find((p) => p.label === 'supervisor');
  assert.ok(leg, JSON.stringify(legs));
  assert.equal(leg.muted, true);
  // And sets Alice's attributes, which her SDK hears.
  const heard = once(worker, 'attributesUpdated');
  await supervisor.setWorkerAttributes(wk, { skills: ['support'], contact_uri: 'client:alice', coached: true });
  assert.equal((await heard).attributes.coached, true);

  // The workspace, read with a workspace token.
  const workspace = new Workspace(await token({ workerSid: undefined, role: 'admin' }), options);
  const workers = await workspace.fetchWorkersInfo();
  assert.deepEqual([...workers.keys()].sort(), [wk, sam].sort());
  const ordered = await workspace.fetchWorkersInfo({ Ordering: 'FriendlyName:desc' });
  assert.deepEqual([...ordered.keys()], [sam, wk]);
  assert.equal((await workspace.fetchWorkerInfo(wk)).activityName, 'Available');
  const queues = await workspace.fetchTaskQueues();
  assert.deepEqual([...queues.keys()], [queue]);
  assert.equal((await workspace.fetchTaskQueue(queue)).queueName, 'support');
  assert.equal((await workspace.fetchTask(created.sid)).sid, created.sid);

  await disconnect([supervisor, worker], errors);
});

// Task.transfer, warm, to another worker: the transferring worker's Task hears it initiated and completed, the
// other worker's reservation carries it (IncomingTransfer) and answers into the caller's conference; each then
// ends its own part. Then a transfer to a queue nobody serves, taken back with OutgoingTransfer.cancel.
test('a warm transfer to another worker, and a transfer taken back', { timeout: 30000 }, async () => {
  const engine = await startEngine();
  engines.push(engine);
  const { rest, ws, activity, addWorker, wk, createTask, token, worker: newWorker } = await setUp(engine);
  const bob = await addWorker('bob', { skills: ['support'], contact_uri: 'client:bob' });
  const sales = (await rest('POST', `/v1/Workspaces/${ws}/TaskQueues`, {
    FriendlyName: 'sales', TargetWorkers: 'skills HAS "sales"',
  })).sid;
  const alice = newWorker(await token());
  const bobs = newWorker(await token({ workerSid: bob }));
  const errors = await allReady([alice, bobs]);
  // Alice is on a call; Bob comes online.
  await alice.activities.get(activity('Available')).setAsCurrent();
  const { task: first, reservation } = await offered(alice, createTask);
  await answer(reservation);
  await bobs.activities.get(activity('Available')).setAsCurrent();

  // The transfer: initiated for Alice, offered to Bob with the transfer on his reservation.
  const initiated = once(reservation.task, 'transferInitiated');
  const offeredToBob = once(bobs, 'reservationCreated');
  await reservation.task.transfer(bob, { mode: 'WARM' });
  const outgoing = await initiated;
  assert.equal(outgoing.to, bob);
  assert.equal(outgoing.mode, 'WARM');
  assert.equal(outgoing.type, 'WORKER');
  const incoming = await offeredToBob;
  assert.equal(incoming.task.sid, first.sid);
  assert.equal(incoming.transfer.sid, outgoing.sid);
  assert.equal(incoming.transfer.workerSid, wk);

  // Bob answers: the transfer completes and Alice's part goes to wrap-up; each ends their own.
  const completed = once(reservation.task.transfers.outgoing, 'completed');
  const wrapup = once(reservation, 'wrapup');
  await answer(incoming);
  await completed;
  await wrapup;
  const aliceDone = once(reservation, 'completed');
  await reservation.complete();
  await aliceDone;
  const bobDone = once(incoming, 'completed');
  await incoming.task.complete('resolved by bob');
  await bobDone;

  // A transfer to a queue nobody serves, canceled: the task is Alice's again.
  await bobs.activities.get(activity('Offline')).setAsCurrent();
  const { reservation: second } = await offered(alice, createTask);
  await answer(second);
  const started = once(second.task, 'transferInitiated');
  await second.task.transfer(sales, { mode: 'WARM', priority: 10 });
  const toSales = await started;
  assert.equal(toSales.type, 'QUEUE');
  const canceled = once(toSales, 'canceled');
  await toSales.cancel();
  await canceled;
  const task = await rest('GET', `/v1/Workspaces/${ws}/Tasks/${second.task.sid}`);
  assert.equal(task.assignment_status, 'assigned');
  assert.equal(task.priority, 10);

  await disconnect([alice, bobs], errors);
});
