// The web console (API.md §8) in Debian's Chromium, against the real server.
//
//     node tests/browser/console.test.mjs BASE_URL [SCREENSHOT_DIR]
//
// tests/browser/run.sh starts the server on a throw-away demo database and runs this.
// Every step is an assertion; the first failure ends the run with status 1. Beside the
// page, requests made with fetch from here (as curl would) check what the page did.
import { chromium } from 'playwright-core';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

const BASE = (process.argv[2] || '').replace(/\/$/, '');
const OUT = process.argv[3] || 'target/browser';
// A second server under a base path with short-lived access tokens (optional).
const SHORT = (process.argv[4] || '').replace(/\/$/, '');
if (!BASE) {
  console.error('usage: node console.test.mjs BASE_URL [SCREENSHOT_DIR [BASE_URL_WITH_PATH_AND_8S_TOKENS]]');
  process.exit(2);
}
const ORIGIN = new URL(BASE).origin;
const CONSOLE_URL = `${BASE}/console/`;
const WAIT_MS = 15000;
mkdirSync(OUT, { recursive: true });

// ---------- HTTP from outside the browser ----------

async function grant(clientId, secret, scope) {
  const body = new URLSearchParams({ grant_type: 'client_credentials' });
  if (scope) body.set('scope', scope);
  const r = await fetch(`${BASE}/token`, {
    method: 'POST',
    headers: {
      'Content-Type': 'application/x-www-form-urlencoded',
      Authorization: 'Basic ' + Buffer.from(`${clientId}:${secret}`).toString('base64'),
    },
    body,
  });
  return { status: r.status, body: await r.json() };
}

async function grantOk(clientId, secret, scope) {
  const r = await grant(clientId, secret, scope);
  assert.equal(r.status, 200, `grant for ${clientId}: ${JSON.stringify(r.body)}`);
  return r.body;
}

async function getJson(path, token) {
  const r = await fetch(`${BASE}${path}`, { headers: { Authorization: `Bearer ${token}` } });
  const text = await r.text();
  return { status: r.status, body: text ? JSON.parse(text) : null };
}

// ---------- the run ----------

const steps = [];
let currentStep = '';
const started = Date.now();
function step(name) {
  currentStep = name;
  steps.push(name);
  console.log(`-- ${name}`);
}

const problems = [];
const consoleErrors = [];
const foreign = [];

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
});
let failed = false;
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  /** Every page is watched: console errors, page errors, requests off its own origin. */
  const watch = (p, origin) => {
    p.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') consoleErrors.push({ step: currentStep, text: m.text() });
    });
    p.on('pageerror', (e) => problems.push(`page error in "${currentStep}": ${e.message}`));
    p.on('request', (r) => {
      if (new URL(r.url()).origin !== origin) foreign.push(r.url());
    });
    p.on('dialog', (d) => d.accept());
    return p;
  };
  const page = watch(await context.newPage(), ORIGIN);
  const shot = async (name) => {
    await page.screenshot({ path: join(OUT, `${name}.png`), fullPage: false });
  };
  const text = (sel) => page.locator(sel).innerText();
  const seatText = () => page.locator('#seat-text');

  step('the console loads with every field labelled');
  await page.goto(CONSOLE_URL);
  await page.locator('#signin-form').waitFor();
  const unlabelled = await page.evaluate(() =>
    [...document.querySelectorAll('input, select, textarea')]
      .filter((e) => !e.labels?.length && !e.getAttribute('aria-label'))
      .map((e) => e.id || e.name));
  assert.deepEqual(unlabelled, [], 'every field has a label');
  await shot('01-signin');

  step('a wrong secret shows the error and no data');
  await page.fill('#signin-client', 'ops');
  await page.fill('#signin-secret', 'not-the-secret');
  await page.click('#signin-form button[type=submit]');
  await page.locator('#signin-error').filter({ hasText: 'invalid_client' }).waitFor({ timeout: WAIT_MS });
  assert.equal(await page.locator('#app').isVisible(), false, 'no console behind a wrong secret');
  assert.equal(await page.locator('#sessions-table tbody tr').count(), 0);
  assert.equal(await page.inputValue('#signin-secret'), '', 'the secret field is cleared');
  await shot('02-signin-wrong-secret');

  step('sign in as ops with the keyboard');
  await page.locator('#signin-client').fill('');
  await page.locator('#signin-client').focus();
  await page.keyboard.type('ops');
  await page.keyboard.press('Tab');
  await page.keyboard.type('ops-secret');
  await page.keyboard.press('Enter');
  await page.locator('#app').waitFor({ state: 'visible', timeout: WAIT_MS });
  assert.equal(await text('#who-name'), 'ops');
  assert.equal(await text('#signin-error'), '', 'the old error is gone');
  await seatText().filter({ hasText: '0 of 2' }).waitFor({ timeout: WAIT_MS });
  const stored = await page.evaluate(() => ({
    local: localStorage.length, session: sessionStorage.length, cookie: document.cookie,
  }));
  assert.deepEqual(stored, { local: 0, session: 0, cookie: '' }, 'nothing stored in the browser');
  assert.equal((await context.cookies()).length, 0);

  step('the seat gauge follows a licensed grant made outside the page');
  const licensed = await grantOk('demo', 'demo-secret', 'all');
  const me = await getJson('/api/v1/me', licensed.access_token);
  assert.equal(me.status, 200);
  const sid = String(me.body.session_id);
  await seatText().filter({ hasText: '1 of 2' }).waitFor({ timeout: WAIT_MS });
  const row = page.locator(`#sessions-table tr[data-session="${sid}"]`);
  await row.waitFor({ timeout: WAIT_MS });
  assert.match(await row.innerText(), /demo/);
  assert.match(await row.innerText(), /held/);
  await shot('03-sessions');

  step('revoking that session in the page frees the seat');
  await row.getByRole('button', { name: /Revoke/ }).click();
  await seatText().filter({ hasText: '0 of 2' }).waitFor({ timeout: WAIT_MS });
  await row.waitFor({ state: 'detached', timeout: WAIT_MS });
  const admin = await grantOk('ops', 'ops-secret', 'admin');
  const seats = await getJson('/admin/v1/licences', admin.access_token);
  assert.equal(seats.status, 200);
  assert.deepEqual(seats.body, { seats: 2, held: 0 }, 'the API agrees: the seat is free');
  assert.equal((await getJson('/api/v1/me', licensed.access_token)).status, 401, 'its token is dead');

  step('adding a user shows its secret once, and that secret gets a token');
  await page.getByRole('button', { name: 'Users' }).click();
  await page.locator('#users-table tr[data-user="ops"]').waitFor({ timeout: WAIT_MS });
  await page.fill('#user-name', 'carol');
  await page.locator('#user-scopes input[value="view"]').check();
  await page.click('#user-form button[type=submit]');
  await page.locator('#secret-box').waitFor({ state: 'visible', timeout: WAIT_MS });
  assert.equal(await text('#secret-client'), 'carol');
  const secret = await page.inputValue('#secret-value');
  assert.ok(secret.length >= 20, `a real secret: ${secret}`);
  await page.locator('#users-table tr[data-user="carol"]').waitFor({ timeout: WAIT_MS });
  await shot('04-users-new-secret');
  const carol = await grantOk('carol', secret, 'view');
  assert.equal(carol.scope, 'view');
  await page.click('#secret-dismiss');
  assert.equal(await page.locator('#secret-box').isVisible(), false);
  assert.ok(!(await page.content()).includes(secret), 'the secret is gone from the page');

  step('disabling the user makes its next grant fail');
  const carolRow = page.locator('#users-table tr[data-user="carol"]');
  await carolRow.getByRole('button', { name: 'Disable carol' }).click();
  await carolRow.filter({ hasText: 'disabled' }).waitFor({ timeout: WAIT_MS });
  const refused = await grant('carol', secret, 'view');
  assert.equal(refused.status, 401, JSON.stringify(refused.body));
  assert.equal(refused.body.error, 'invalid_client');
  await carolRow.getByRole('button', { name: 'Enable carol' }).waitFor();

  step('scopes are listed');
  await page.getByRole('button', { name: 'Scopes' }).click();
  for (const name of ['view', 'all', 'admin']) {
    await page.locator('#scopes-table tbody tr', { hasText: name }).first().waitFor({ timeout: WAIT_MS });
  }
  await shot('05-scopes');

  step('the "get a token" panel shows a token for viewer and its curl command');
  await page.getByRole('button', { name: 'Get a token' }).click();
  await page.fill('#token-client', 'viewer');
  await page.fill('#token-secret', 'viewer-secret');
  await page.fill('#token-scope', 'view');
  await page.click('#token-form button[type=submit]');
  await page.locator('#token-result').waitFor({ state: 'visible', timeout: WAIT_MS });
  const answer = JSON.parse(await text('#token-json'));
  assert.equal(answer.token_type, 'Bearer');
  assert.equal(answer.scope, 'view');
  assert.ok(answer.access_token && answer.refresh_token);
  assert.equal((await getJson('/api/v1/me', answer.access_token)).body.client_id, 'viewer');
  const curl = await text('#token-curl');
  assert.match(curl, /curl -s -u viewer/);
  assert.ok(curl.includes(`${BASE}/token`), curl);
  assert.ok(!curl.includes('viewer-secret'), 'curl asks for the secret itself');
  await shot('06-get-a-token');

  step('a GetData query the sandbox refuses shows the reason by its form');
  await page.click('#token-use');
  await page.locator('#view-queries').waitFor({ state: 'visible' });
  assert.equal(await page.inputValue('#try-token'), answer.access_token);
  await page.fill('#query-name', 'peek');
  await page.fill('#query-sql', 'SELECT * FROM users');
  await page.click('#query-form button[type=submit]');
  await page.locator('#query-error').filter({ hasText: /\S/ }).waitFor({ timeout: WAIT_MS });
  assert.ok((await text('#query-error')).length > 5, 'the sandbox gives a reason');
  assert.equal(await page.getAttribute('#query-sql', 'aria-invalid'), 'true', 'the field the problem names is marked');
  await shot('07a-query-refused');

  step('a GetData query added in the page answers over HTTP');
  await page.fill('#query-name', 'cheap');
  await page.fill('#query-sql', 'SELECT sku, name, price_cents FROM products WHERE price_cents <= ?1 ORDER BY sku');
  await page.selectOption('#query-scope', 'view');
  await page.fill('#query-description', 'Products at or under a price');
  await page.click('#query-form button[type=submit]');
  await page.locator('#query-ok').filter({ hasText: 'Added cheap' }).waitFor({ timeout: WAIT_MS });
  assert.equal(await text('#query-error'), '');
  await page.locator('#queries-table tr[data-query="cheap"]').waitFor({ timeout: WAIT_MS });
  await page.selectOption('#try-name', 'cheap');
  await page.fill('#try-qp1', '500');
  await page.click('#try-form button[type=submit]');
  await page.locator('#try-result table').waitFor({ timeout: WAIT_MS });
  const shownRows = await page.locator('#try-result tbody tr').count();
  assert.ok(shownRows > 0, 'the page shows the rows');
  const viewer = await grantOk('viewer', 'viewer-secret', 'view');
  const http = await getJson('/api/v1/custom/cheap?qp1=500', viewer.access_token);
  assert.equal(http.status, 200, JSON.stringify(http.body));
  assert.deepEqual(http.body.resultSets[0].columns.map((c) => c.Name), ['sku', 'name', 'price_cents']);
  assert.equal(http.body.resultSets[0].rows.length, shownRows);
  await shot('07-queries');

  step('a script handler that does not compile is refused with its line; one added in the page answers over HTTP');
  await page.getByRole('button', { name: 'Scripts' }).click();
  await page.locator('#scripts-table tr[data-script="price-list"]').waitFor({ timeout: WAIT_MS });
  await page.fill('#script-name', 'greet');
  await page.fill('#script-source', 'let x = 1;\nlet = ;');
  await page.click('#script-form button[type=submit]');
  await page.locator('#script-error').filter({ hasText: /line 2/ }).waitFor({ timeout: WAIT_MS });
  assert.equal(await page.getAttribute('#script-source', 'aria-invalid'), 'true', 'the source is marked');
  await page.fill('#script-source', '#{ hello: request.client_id }');
  await page.selectOption('#script-scope', 'view');
  await page.click('#script-form button[type=submit]');
  await page.locator('#script-ok').filter({ hasText: 'Added greet' }).waitFor({ timeout: WAIT_MS });
  await page.locator('#scripts-table tr[data-script="greet"]').waitFor({ timeout: WAIT_MS });
  const greeted = await getJson('/api/v1/custom/greet', viewer.access_token);
  assert.equal(greeted.status, 200, JSON.stringify(greeted.body));
  assert.deepEqual(greeted.body, { hello: 'viewer' });
  await shot('07b-scripts');

  step('the audit trail filters by client');
  await page.getByRole('button', { name: 'Audit' }).click();
  await page.fill('#audit-client', 'carol');
  await page.click('#audit-form button[type=submit]');
  await page.locator('#audit-count').filter({ hasText: 'client carol' }).waitFor({ timeout: WAIT_MS });
  const auditRows = page.locator('#audit-table tbody tr');
  await auditRows.first().waitFor({ timeout: WAIT_MS });
  for (const t of await auditRows.allInnerTexts()) assert.match(t, /carol/);
  await shot('08-audit');

  step('readable at 390×844');
  await page.getByRole('button', { name: 'Sessions' }).click();
  await grantOk('demo', 'demo-secret', 'all');
  await seatText().filter({ hasText: '1 of 2' }).waitFor({ timeout: WAIT_MS });
  await page.setViewportSize({ width: 390, height: 844 });
  await page.waitForTimeout(300);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `no sideways scrolling of the page at 390 px (${overflow} px too wide)`);
  await shot('09-mobile-390x844');
  await page.getByRole('button', { name: 'Users' }).click();
  await shot('10-mobile-users-390x844');
  await page.setViewportSize({ width: 1280, height: 800 });

  step('signing out forgets the token and ends the console\'s session');
  const ownSession = await page.evaluate(() => session.sessionId);
  assert.match(ownSession, /^\d+$/);
  await page.getByRole('button', { name: 'Sessions' }).click();
  await page.locator(`#sessions-table tr[data-session="${ownSession}"]`, { hasText: 'this console' }).waitFor({ timeout: WAIT_MS });
  await page.click('#sign-out');
  await page.locator('#signin-form').waitFor({ state: 'visible' });
  assert.equal(await page.locator('#app').isVisible(), false);
  const html = await page.content();
  assert.ok(!html.includes(answer.access_token), 'no token left in the page');
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const live = await getJson('/admin/v1/sessions?limit=500', admin.access_token);
    if (!live.body.items.some((x) => String(x.id) === ownSession)) break;
    assert.ok(Date.now() < deadline, "the console's session ends when it signs out");
    await new Promise((r) => setTimeout(r, 200));
  }

  if (SHORT) {
    step('under a base path, and an expired admin token asks for the secret again');
    const short = new URL(SHORT);
    const p2 = watch(await context.newPage(), short.origin);
    const paths = [];
    p2.on('request', (r) => paths.push(new URL(r.url()).pathname));
    await p2.goto(`${SHORT}/console/`);
    await p2.fill('#signin-client', 'ops');
    await p2.fill('#signin-secret', 'ops-secret');
    await p2.click('#signin-form button[type=submit]');
    await p2.locator('#seat-text').filter({ hasText: '0 of 2' }).waitFor({ timeout: WAIT_MS });
    const outside = paths.filter((x) => !x.startsWith(`${short.pathname}/`));
    assert.deepEqual(outside, [], 'every request stays under the base path');
    assert.ok(paths.includes(`${short.pathname}/token`) && paths.includes(`${short.pathname}/admin/v1/licences`));
    // 8-second tokens: the page gives its token up 5 s before expiry, at the next poll.
    await p2.locator('#signin-note').filter({ hasText: 'expired' }).waitFor({ timeout: WAIT_MS });
    assert.equal(await p2.locator('#app').isVisible(), false);
    assert.equal(await p2.inputValue('#signin-client'), 'ops', 'the client id is kept');
    assert.equal(await p2.inputValue('#signin-secret'), '', 'the secret is not');
    await p2.screenshot({ path: join(OUT, '11-token-expired.png') });
    await p2.fill('#signin-secret', 'ops-secret');
    await p2.keyboard.press('Enter');
    await p2.locator('#app').waitFor({ state: 'visible', timeout: WAIT_MS });
    assert.equal(await p2.locator('#signin-note').isVisible(), false);
    await p2.close();
  }

  step('no console error, no page error, no other origin');
  await page.waitForTimeout(500);
  await context.close();
  // Chromium reports each 4xx answer as a console error; the run asks for exactly
  // these on purpose (a wrong secret, a refused query). Anything else fails.
  const expected = /^Failed to load resource: the server responded with a status of (400|401) /;
  const unexpected = consoleErrors.filter((e) => !expected.test(e.text));
  assert.deepEqual(unexpected, [], 'console errors');
  assert.deepEqual(problems, [], 'page errors');
  assert.deepEqual(foreign, [], 'requests to another origin');
} catch (e) {
  failed = true;
  console.error(`FAILED in step "${currentStep}":`);
  console.error(e);
  if (consoleErrors.length) console.error('console:', consoleErrors);
  if (problems.length) console.error('page errors:', problems);
} finally {
  await browser.close();
}
const secs = ((Date.now() - started) / 1000).toFixed(1);
console.log(failed
  ? `browser test FAILED after ${secs} s`
  : `browser test passed: ${steps.length} steps in ${secs} s; screenshots in ${OUT}`);
process.exit(failed ? 1 : 0);
