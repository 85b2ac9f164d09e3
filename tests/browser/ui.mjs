// Browser flows of linekeeper's local web page (issue 5), in headless Chromium driven by playwright-core.
//
// Run by tests/tests/browser.rs (`cargo test -p linekeeper-e2e --test browser`), which starts the daemon, a simulated
// modem and a small control server, then runs `node tests/browser/ui.mjs` with:
//   LK_URL        the daemon's web address, e.g. http://127.0.0.1:20123
//   LK_USER       the web user (admin)
//   LK_PASSWORD   the first-start password the daemon logged
//   LK_CONTROL    the control server: POST /ring?number=N&name=X makes the simulated line ring (then stop ringing)
//   LK_ARTIFACTS  where screenshots (one per step, and failure.png), failure.html and the downloaded CSV go
// Optional: LK_CHROMIUM (default /usr/bin/chromium), LK_NUMBER (default 13812345678), LK_NAME (default Test),
// LK_NEW_PASSWORD (default generated), LK_HOLIDAY (default 2031-10-08), LK_TIMEOUT_MS (one wait, default 30000).
//
// The pages are checked against their DOM contract (ids, classes, data- attributes), never against layout or wording
// except the nav texts of both languages. Every wait is on a DOM condition with a generous deadline; a failed wait
// says what was awaited and shows the part of the page it looked at. Exit status: 0 all flows passed, 1 a failure.

import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';

// ----------------------------------------------------------------------------------------------------------------
// Configuration
// ----------------------------------------------------------------------------------------------------------------

function need(name) {
  const v = process.env[name];
  if (!v) {
    console.error(`ui.mjs: FAILED: the environment variable ${name} is not set (see the top of tests/browser/ui.mjs)`);
    process.exit(1);
  }
  return v;
}

const BASE = need('LK_URL').replace(/\/+$/, '');
const USER = process.env.LK_USER || 'admin';
const FIRST_PASSWORD = need('LK_PASSWORD');
const CONTROL = need('LK_CONTROL').replace(/\/+$/, '');
const ARTIFACTS = path.resolve(need('LK_ARTIFACTS'));
const CHROMIUM = process.env.LK_CHROMIUM || '/usr/bin/chromium';
const NUMBER = process.env.LK_NUMBER || '13812345678';
const NAME = process.env.LK_NAME || 'Test';
const NEW_PASSWORD = process.env.LK_NEW_PASSWORD || `Lk-${randomBytes(9).toString('base64url')}`;
const HOLIDAY = process.env.LK_HOLIDAY || '2031-10-08';
/** One wait: an element to appear, a live update to arrive, a page to load. */
const T = Number(process.env.LK_TIMEOUT_MS || 30000);
/** The whole run; past it the script fails instead of hanging. */
const OVERALL = 10 * T + 120000;
const TIMEZONE = 'Asia/Shanghai'; // the harness's site.timezone

const NAV = {
  en: {
    status: 'Status', calls: 'Calls', tasks: 'Tasks', directory: 'Directory', reports: 'Reports',
    config: 'Configuration', diagnostics: 'Diagnostics',
  },
  'zh-CN': {
    status: '状态', calls: '通话', tasks: '任务', directory: '客户', reports: '报表', config: '配置',
    diagnostics: '诊断',
  },
};
const NAV_HREF = {
  status: '/', calls: '/calls', tasks: '/tasks', directory: '/directory', reports: '/reports', config: '/config',
  diagnostics: '/diagnostics',
};
const DAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'];

mkdirSync(ARTIFACTS, { recursive: true });

// ----------------------------------------------------------------------------------------------------------------
// Helpers
// ----------------------------------------------------------------------------------------------------------------

const started = Date.now();
function log(msg) {
  const s = ((Date.now() - started) / 1000).toFixed(1).padStart(6);
  console.log(`ui.mjs [${s}s] ${msg}`);
}

function clip(s, max = 2500) {
  s = String(s ?? '');
  return s.length <= max ? s : `${s.slice(0, max)}... [${s.length} chars in all]`;
}

/** The number as a masked display shows it: 138****5678. */
function masked(n) {
  return n.length <= 7 ? n : `${n.slice(0, 3)}****${n.slice(-4)}`;
}

/** Today (YYYY-MM-DD) in the site's time zone. */
function today() {
  return new Intl.DateTimeFormat('en-CA', { timeZone: TIMEZONE, year: 'numeric', month: '2-digit', day: '2-digit' })
    .format(new Date());
}

let page; // the one page all flows use
let currentStep = '(start)';
let shotNo = 0;
const pageErrors = [];

async function shot(name) {
  shotNo += 1;
  const file = path.join(ARTIFACTS, `${String(shotNo).padStart(2, '0')}-${name}.png`);
  try {
    await page.screenshot({ path: file, fullPage: true, timeout: T });
    log(`screenshot ${path.basename(file)}`);
  } catch (e) {
    log(`(screenshot ${path.basename(file)} failed: ${e.message.split('\n')[0]})`);
  }
}

async function step(name, fn) {
  currentStep = name;
  log(`=== ${name}`);
  await fn();
  log(`--- ok: ${name}`);
}

function pathname() {
  return new URL(page.url()).pathname;
}

/** The URL and the outerHTML of `selector` (or the body), for a failure message. */
async function describe(selector) {
  let html;
  try {
    html = await page.evaluate((sel) => {
      const el = (sel && document.querySelector(sel)) || document.body;
      return el ? el.outerHTML : '(no body)';
    }, selector || null);
  } catch (e) {
    html = `(could not read the page: ${e.message.split('\n')[0]})`;
  }
  return `page ${page.url()}${selector ? `, ${selector}` : ''}:\n${clip(html)}`;
}

/** Waits until `fn(arg)` is truthy in the page; on timeout says `what` and shows `context`. */
async function until(what, fn, arg, { timeout = T, context } = {}) {
  try {
    const handle = await page.waitForFunction(fn, arg, { timeout, polling: 100 });
    return await handle.jsonValue();
  } catch (e) {
    if (!/Timeout/i.test(e.message)) throw e;
    throw new Error(`${what}: not seen within ${timeout} ms; ${await describe(context)}`);
  }
}

/** Waits until an element matching `selector` is in the page. */
async function present(selector, what, opts = {}) {
  return until(what || `an element ${selector}`, (sel) => !!document.querySelector(sel), selector, opts);
}

/** Asserts `selector` is in the page now. */
async function must(selector, what) {
  if ((await page.locator(selector).count()) === 0) {
    throw new Error(`${what || `no ${selector}`}: the page has no ${selector}; ${await describe()}`);
  }
}

/** Opens a page and waits for its DOM. */
async function open(p) {
  const resp = await page.goto(`${BASE}${p}`, { waitUntil: 'domcontentloaded', timeout: T });
  return resp;
}

/** Clicks `selector` (a submit button, a link) and waits for the page it loads. */
async function clickAndLoad(selector, what) {
  const before = page.url();
  try {
    await Promise.all([
      page.waitForNavigation({ waitUntil: 'domcontentloaded', timeout: T }),
      page.click(selector, { timeout: T }),
    ]);
  } catch (e) {
    throw new Error(
      `${what || `clicking ${selector}`} did not load a page within ${T} ms (the contract wants server-rendered ` +
        `forms and links; was at ${before}): ${e.message.split('\n')[0]}; ${await describe()}`,
    );
  }
}

/** Selects `value` in `selector` and waits for the page the self-submitting form loads. */
async function selectAndLoad(selector, value, what) {
  try {
    await Promise.all([
      page.waitForNavigation({ waitUntil: 'domcontentloaded', timeout: T }),
      page.selectOption(selector, value, { timeout: T }),
    ]);
  } catch (e) {
    throw new Error(
      `${what}: choosing ${value} in ${selector} did not submit its form and load a page within ${T} ms: ` +
        `${e.message.split('\n')[0]}; ${await describe('form#lang-form')}`,
    );
  }
}

async function text(selector) {
  return ((await page.locator(selector).first().textContent({ timeout: T })) || '').trim();
}

async function attr(selector, name) {
  return page.locator(selector).first().getAttribute(name, { timeout: T });
}

async function value(selector) {
  return page.locator(selector).first().inputValue({ timeout: T });
}

async function htmlLang() {
  return page.evaluate(() => document.documentElement.getAttribute('lang'));
}

async function login(user, password) {
  await open('/login');
  await must('input#user[name="user"]', 'the login form');
  await must('input#password[name="password"]', 'the login form');
  await must('button#login-submit', 'the login form');
  await page.fill('input#user', user);
  await page.fill('input#password', password);
  await clickAndLoad('button#login-submit', 'submitting the login form');
}

async function control(p) {
  const url = `${CONTROL}${p}`;
  let resp;
  try {
    resp = await fetch(url, { method: 'POST', signal: AbortSignal.timeout(T) });
  } catch (e) {
    throw new Error(`the control server did not answer POST ${url}: ${e.message}`);
  }
  const body = await resp.text();
  if (!resp.ok) throw new Error(`the control server answered POST ${url} with HTTP ${resp.status}: ${body}`);
  log(`control: POST ${p} -> ${resp.status} ${body.trim()}`);
}

// ----------------------------------------------------------------------------------------------------------------
// Flows
// ----------------------------------------------------------------------------------------------------------------

async function flowPassword() {
  await step('1a. the login page; a wrong password is refused with .form-error', async () => {
    await login(USER, 'not-the-password-0');
    await shot('login-wrong-password');
    await present('.form-error', 'a .form-error after a wrong password');
    assert.equal(pathname(), '/login', `a wrong password must leave the user on /login, is at ${page.url()}`);
  });

  await step('1b. the first login with the initial password goes to /password', async () => {
    await login(USER, FIRST_PASSWORD);
    await shot('first-login');
    assert.equal(
      pathname(),
      '/password',
      `the first login must redirect to /password (the password must be changed); is at ${page.url()}; ` +
        `${await describe('.form-error')}`,
    );
    for (const sel of ['input#current-password', 'input#new-password', 'input#confirm-password',
      'button#password-submit']) {
      await must(sel, 'the password form');
    }
  });

  await step('1c. a new password shorter than 10 characters is refused (by the server too)', async () => {
    await page.fill('input#current-password', FIRST_PASSWORD);
    await page.fill('input#new-password', 'Short-123');
    await page.fill('input#confirm-password', 'Short-123');
    // The page may refuse it already in the browser (minlength); the server must refuse it all the same.
    const blocked = await page.evaluate(() => {
      const form = document.querySelector('button#password-submit').form;
      const blocked = !form.checkValidity();
      form.noValidate = true;
      return blocked;
    });
    log(`the browser's own form validation ${blocked ? 'refuses' : 'lets through'} a 9-character password; submitting it without`);
    await clickAndLoad('button#password-submit', 'submitting the password form');
    await shot('password-too-short');
    assert.notEqual(pathname(), '/', 'a 9-character new password must be refused, yet the form went on to /');
    await must('input#new-password', 'the password form shown again after a refused password');
  });

  await step('1d. change the first password; the status page follows', async () => {
    await page.fill('input#current-password', FIRST_PASSWORD);
    await page.fill('input#new-password', NEW_PASSWORD);
    await page.fill('input#confirm-password', NEW_PASSWORD);
    await clickAndLoad('button#password-submit', 'submitting the password form');
    await shot('password-changed');
    assert.equal(pathname(), '/', `a good password change must redirect to /; is at ${page.url()}; ${await describe()}`);
    for (const [k, href] of Object.entries(NAV_HREF)) {
      const got = await attr(`a#nav-${k}`, 'href').catch(() => null);
      assert.ok(got !== null, `the nav has no a#nav-${k}; ${await describe()}`);
      assert.equal(new URL(got, BASE).pathname, href, `a#nav-${k} must link to ${href}, links to ${got}`);
    }
  });

  await step('1e. log out (button#logout, a form POST to /logout); pages then need a login', async () => {
    const form = await page.evaluate(() => {
      const b = document.querySelector('button#logout');
      const f = b && b.closest('form');
      return b ? { form: !!f, action: f ? f.action : null, method: f ? (f.getAttribute('method') || 'get') : null } : null;
    });
    assert.ok(form, `no button#logout on the status page; ${await describe()}`);
    assert.ok(form.form, 'button#logout is not in a form');
    assert.equal(new URL(form.action).pathname, '/logout', `the logout form posts to ${form.action}`);
    assert.equal(form.method.toLowerCase(), 'post', `the logout form's method is ${form.method}`);
    await clickAndLoad('button#logout', 'logging out');
    await shot('logged-out');
    await open('/');
    assert.equal(pathname(), '/login', `after logging out, / must send to /login; is at ${page.url()}`);
  });

  await step('1f. the initial password no longer works; the new one does and goes straight to /', async () => {
    await login(USER, FIRST_PASSWORD);
    await present('.form-error', 'a .form-error for the old (initial) password after it was changed');
    await login(USER, NEW_PASSWORD);
    await shot('login-new-password');
    assert.equal(pathname(), '/', `a login with the changed password must go to /; is at ${page.url()}; ${await describe()}`);
  });
}

let taskId;

async function flowRingingToTask() {
  const line = '#lines [data-line="line1"]';
  let openBefore;

  await step('2a. the status page shows line1 idle and the queue figures', async () => {
    await open('/');
    await present(line, 'the line line1 in #lines', { context: '#lines' });
    await until('line1 idle', (sel) => document.querySelector(sel)?.getAttribute('data-state') === 'idle', line,
      { context: '#lines' });
    for (const k of ['ringing', 'open_tasks', 'overdue_tasks', 'service_level_pct', 'agents_available']) {
      await must(`#queue [data-k="${k}"]`, `the queue figure ${k}`);
    }
    openBefore = Number(await text('#queue [data-k="open_tasks"]'));
    assert.ok(Number.isFinite(openBefore), `#queue [data-k=open_tasks] is not a number: ${await describe('#queue')}`);
    assert.equal(await text('#queue [data-k="ringing"]'), '0', `nothing rings yet: ${await describe('#queue')}`);
    await page.evaluate(() => { window.__marker = 1; });
    await shot('status-idle');
  });

  await step(`2b. a call from ${NUMBER} rings: line1 turns ringing live, with the caller`, async () => {
    await control(`/ring?number=${encodeURIComponent(NUMBER)}&name=${encodeURIComponent(NAME)}`);
    await until(`line1 data-state=ringing with ${NUMBER} (or ${masked(NUMBER)}) in .caller`, ([sel, n, m]) => {
      const el = document.querySelector(sel);
      const caller = el?.querySelector('.caller')?.textContent || '';
      return el?.getAttribute('data-state') === 'ringing' && (caller.includes(n) || caller.includes(m));
    }, [line, NUMBER, masked(NUMBER)], { context: '#lines' });
    await shot('status-ringing');
    await must(`${line} .elapsed`, 'the ringing seconds (.elapsed) of line1');
    const elapsed = await text(`${line} .elapsed`);
    assert.match(elapsed, /\d/, `.elapsed of a ringing line must show seconds, shows ${JSON.stringify(elapsed)}`);
    await until('#queue ringing = 1', () => document.querySelector('#queue [data-k="ringing"]')?.textContent.trim() === '1',
      null, { context: '#queue' });
    const counted = await until('the ringing seconds (.elapsed) counting up, or the ringing ending', (sel) => {
      const el = document.querySelector(sel);
      const secs = parseInt((el?.querySelector('.elapsed')?.textContent || '').replace(/[^0-9]/g, ''), 10);
      if (el?.getAttribute('data-state') !== 'ringing') return { ended: true };
      return secs >= 1 ? { secs } : false;
    }, line, { context: '#lines' });
    assert.ok(!counted.ended, `.elapsed of line1 never showed a second of ringing before the ringing ended: ${await describe(line)}`);
    assert.equal(await page.evaluate(() => window.__marker), 1, 'the status page reloaded instead of updating live');
  });

  await step('2c. nobody answers: the line goes back to idle and a task opens, live', async () => {
    await until('line1 back to data-state=idle after the missed call',
      (sel) => document.querySelector(sel)?.getAttribute('data-state') === 'idle', line,
      { timeout: 2 * T, context: '#lines' });
    await until(`#queue ringing = 0 and open_tasks >= ${openBefore + 1}`, (before) => {
      const q = (k) => document.querySelector(`#queue [data-k="${k}"]`)?.textContent.trim();
      return q('ringing') === '0' && Number(q('open_tasks')) >= before + 1;
    }, openBefore, { context: '#queue' });
    assert.equal(await page.evaluate(() => window.__marker), 1, 'the status page reloaded instead of updating live');
    await shot('status-after-missed-call');
  });

  await step(`2d. /tasks lists an open callback task for ${NUMBER}`, async () => {
    const row = `tr[data-task-id][data-kind="callback"][data-number="${NUMBER}"]`;
    const deadline = Date.now() + T;
    for (;;) {
      await open('/tasks');
      if ((await page.locator(row).count()) > 0) break;
      if (Date.now() > deadline) {
        throw new Error(`/tasks showed no ${row} within ${T} ms; ${await describe('table')}`);
      }
      await page.waitForTimeout(500); // between two reloads of a page that does not update itself
    }
    assert.equal(await page.locator(row).count(), 1, `one callback task for ${NUMBER}: ${await describe('table')}`);
    assert.equal(await attr(row, 'data-state'), 'open', `the task's data-state: ${await describe(row)}`);
    taskId = await attr(row, 'data-task-id');
    assert.ok(taskId, 'the row has an empty data-task-id');
    const href = await attr(`${row} a.task-link`, 'href').catch(() => null);
    assert.ok(href, `the task row has no a.task-link: ${await describe(row)}`);
    assert.equal(new URL(href, BASE).pathname, `/tasks/${taskId}`, `a.task-link of task ${taskId} links to ${href}`);
    await shot('tasks-open');
  });
}

async function flowCloseTask() {
  await step(`3. close task ${taskId} on its detail page`, async () => {
    const row = `tr[data-task-id="${taskId}"]`;
    await clickAndLoad(`${row} a.task-link`, 'opening the task');
    assert.equal(pathname(), `/tasks/${taskId}`);
    await must('#task-state', 'the task state');
    assert.equal(await attr('#task-state', 'data-state'), 'open', `${await describe('#task-state')}`);
    const done = 'form[data-action="done"]';
    await must(done, 'the done action of an open callback task');
    await must(`${done} button[type="submit"]`, 'the submit button of the done form');
    if ((await page.locator(`${done} textarea[name="note"]`).count()) > 0) {
      await page.fill(`${done} textarea[name="note"]`, 'called back from the browser test');
    }
    await shot('task-detail-open');
    await clickAndLoad(`${done} button[type="submit"]`, 'submitting the done form');
    await shot('task-detail-done');
    assert.equal(pathname(), `/tasks/${taskId}`, `after an action the page must redirect to the detail page; is at ${page.url()}`);
    await until('#task-state[data-state=done]', () => document.querySelector('#task-state')?.getAttribute('data-state') === 'done',
      null, { context: '#task-state' });
    await present('.flash-ok', 'a .flash-ok message after the done action');
    assert.equal(await page.locator(done).count(), 0, 'a done task must not offer the done action again (one form per allowed action)');

    await open('/tasks');
    assert.equal(await page.locator(row).count(), 0, `the done task is still listed among the open ones: ${await describe(row)}`);
    await open('/tasks?state=all');
    await must(row, `task ${taskId} in /tasks?state=all`);
    assert.equal(await attr(row, 'data-state'), 'done', `${await describe(row)}`);
    await shot('tasks-all');
  });
}

async function fillHours(mon) {
  const form = 'form#form-hours';
  await page.fill(`${form} input[name="mon"]`, mon);
  for (const d of ['tue', 'wed', 'thu', 'fri']) await page.fill(`${form} input[name="${d}"]`, '09:00-18:00');
  for (const d of ['sat', 'sun']) await page.fill(`${form} input[name="${d}"]`, 'closed');
  await page.fill(`${form} textarea[name="holidays"]`, `${HOLIDAY}\n`);
  await page.fill(`${form} textarea[name="workdays"]`, '');
  await page.fill(`${form} input[name="workday_hours"]`, '09:00-18:00');
}

async function flowHours() {
  await step('4a. /config links to /config/hours, which has the hours form', async () => {
    await open('/config');
    await shot('config');
    const link = 'a[href="/config/hours"]';
    await must(link, 'a link to /config/hours on /config');
    await clickAndLoad(link, 'opening /config/hours');
    assert.equal(pathname(), '/config/hours');
    const form = 'form#form-hours';
    for (const d of DAYS) await must(`${form} input[name="${d}"]`, `the ${d} field`);
    await must(`${form} textarea[name="holidays"]`, 'the holidays field');
    await must(`${form} textarea[name="workdays"]`, 'the workdays field');
    await must(`${form} input[name="workday_hours"]`, 'the workday_hours field');
    await must('button#save-hours', 'the save button');
    const holidays = await value(`${form} textarea[name="holidays"]`);
    assert.ok(!holidays.includes(HOLIDAY), `the holiday ${HOLIDAY} is there before the test set it`);
    await shot('hours-before');
  });

  await step(`4b. a holiday and a bad opening time (mon = 25:00-18:00): the field error beside mon, nothing saved`, async () => {
    await fillHours('25:00-18:00');
    await clickAndLoad('button#save-hours', 'saving the hours');
    await shot('hours-bad-mon');
    await present('.field-error[data-field="mon"]', 'a .field-error[data-field=mon] for 25:00-18:00', { context: 'form#form-hours' });
    const others = await page.$$eval('.field-error', (els) => els.map((e) => e.getAttribute('data-field')));
    assert.deepEqual(others, ['mon'], `only mon is wrong, the page flags: ${JSON.stringify(others)}`);
    // Beside the field: the smallest element holding both the error and the mon input holds no other input.
    const beside = await page.evaluate(() => {
      const input = document.querySelector('form#form-hours input[name="mon"]');
      const err = document.querySelector('.field-error[data-field="mon"]');
      if (!input || !err) return 'missing';
      let box = input.parentElement;
      while (box && !box.contains(err)) box = box.parentElement;
      if (!box) return 'the error is not in the page with the input';
      return box.querySelectorAll('input, textarea, select').length === 1 ? 'yes' : box.outerHTML.slice(0, 1500);
    });
    assert.equal(beside, 'yes', `the mon error is not beside the mon field; their common container: ${beside}`);
    assert.equal(await value('form#form-hours input[name="mon"]'), '25:00-18:00', 'the form must keep the value the user typed');
    assert.ok((await value('form#form-hours textarea[name="holidays"]')).includes(HOLIDAY), 'the form must keep the holiday typed');
    assert.equal(await value('form#form-hours input[name="tue"]'), '09:00-18:00', 'the form must keep the user\'s values');
    assert.equal(await page.locator('.flash-ok').count(), 0, 'a refused save must not say it saved (.flash-ok)');

    await open('/config/hours');
    const holidays = await value('form#form-hours textarea[name="holidays"]');
    assert.ok(!holidays.includes(HOLIDAY), `a refused save must save nothing, yet /config/hours now has the holiday: ${JSON.stringify(holidays)}`);
    assert.notEqual(await value('form#form-hours input[name="mon"]'), '25:00-18:00', 'a refused save stored mon');
  });

  await step('4c. fixed (mon = 09:00-18:00) and saved: .flash-ok, and the holiday is kept', async () => {
    await fillHours('09:00-18:00');
    await clickAndLoad('button#save-hours', 'saving the hours');
    await shot('hours-saved');
    await present('.flash-ok', 'a .flash-ok after a good save', { context: 'body' });
    assert.equal(await page.locator('.field-error').count(), 0, `a good save shows no field error: ${await describe('form#form-hours')}`);
    await open('/config/hours');
    const holidays = await value('form#form-hours textarea[name="holidays"]');
    assert.ok(holidays.split(/\s+/).includes(HOLIDAY), `the saved holiday ${HOLIDAY} is not shown on a fresh /config/hours: ${JSON.stringify(holidays)}`);
    assert.equal(await value('form#form-hours input[name="mon"]'), '09:00-18:00', 'the saved mon hours');
    assert.equal(await value('form#form-hours input[name="sat"]'), 'closed', 'the saved sat');
    await shot('hours-reopened');
  });
}

async function checkLanguage(lang, where) {
  assert.equal(await htmlLang(), lang, `html[lang] on ${where}`);
  for (const [k, want] of Object.entries(NAV[lang])) {
    const got = await text(`a#nav-${k}`);
    assert.equal(got, want, `a#nav-${k} in ${lang} on ${where}: ${await describe('nav')}`);
  }
}

async function flowLanguage() {
  await step('5. switch the language and back: html[lang] and the nav texts follow', async () => {
    await open('/');
    const first = await htmlLang();
    assert.ok(first === 'en' || first === 'zh-CN', `html[lang] is ${JSON.stringify(first)}, not en or zh-CN`);
    await checkLanguage(first, '/');
    await must('form#lang-form select#lang-select[name="lang"]', 'the language form');
    const options = await page.$$eval('#lang-select option', (os) => os.map((o) => o.value).sort());
    assert.deepEqual(options, ['en', 'zh-CN'], 'the language choices');
    const other = first === 'en' ? 'zh-CN' : 'en';
    for (const [lang, shotName] of [[other, `lang-${other}`], [first, `lang-${first}-again`]]) {
      await selectAndLoad('#lang-select', lang, `switching to ${lang}`);
      await shot(shotName);
      await checkLanguage(lang, page.url());
      await open('/tasks');
      await checkLanguage(lang, '/tasks (another page, the choice must stay)');
      await open('/');
    }
  });
}

async function flowReport() {
  const date = today();
  await step(`6a. the daily report of today (${date}) has a chart and a CSV link`, async () => {
    await open(`/reports?kind=daily&date=${date}`);
    await present('svg.chart', 'an svg.chart in the daily report');
    await must('a#report-csv', 'the CSV link');
    await shot('report-daily');
  });

  await step('6b. the CSV download starts with a UTF-8 byte-order mark and has a header row', async () => {
    let download;
    try {
      [download] = await Promise.all([
        page.waitForEvent('download', { timeout: T }),
        page.click('a#report-csv', { timeout: T }),
      ]);
    } catch (e) {
      throw new Error(`clicking a#report-csv started no download within ${T} ms: ${e.message.split('\n')[0]}; ${await describe('a#report-csv')}`);
    }
    const file = path.join(ARTIFACTS, `report-daily-${date}.csv`);
    await download.saveAs(file);
    const failure = await download.failure();
    assert.equal(failure, null, `the download failed: ${failure}`);
    log(`downloaded ${download.suggestedFilename()} from ${download.url()} -> ${file}`);
    const bytes = readFileSync(file);
    assert.ok(bytes.length > 3, `the CSV is empty (${bytes.length} bytes)`);
    assert.deepEqual([...bytes.subarray(0, 3)], [0xef, 0xbb, 0xbf],
      `the CSV must start with the UTF-8 byte-order mark EF BB BF, starts with ${bytes.subarray(0, 8).toString('hex')}`);
    const lines = bytes.subarray(3).toString('utf8').split(/\r?\n/).filter((l) => l.length > 0);
    log(`CSV: ${lines.length} lines; the first: ${clip(lines.slice(0, 3).join(' | '), 400)}`);
    assert.ok(lines.length >= 2, `the CSV needs a header row and at least one data row, has ${lines.length} lines`);
    const header = lines[0].split(',');
    assert.ok(header.length >= 2 && header.every((c) => c.trim() !== '' && !/^-?[\d.]+$/.test(c.trim())),
      `the first line is not a header row: ${clip(lines[0], 400)}`);
  });

  // (The shift report needs a [[shift]] in the config, which the test's config has not.)
  await step('6c. the weekly, monthly and quarterly reports have a chart and a CSV link too; the date defaults to today', async () => {
    for (const kind of ['weekly', 'monthly', 'quarterly', 'daily']) {
      const p = kind === 'daily' ? '/reports?kind=daily' : `/reports?kind=${kind}&date=${date}`;
      const resp = await open(p);
      assert.ok(resp && resp.status() === 200, `GET ${p} answered ${resp && resp.status()}`);
      await present('svg.chart', `an svg.chart in ${p}`);
      await must('a#report-csv', `the CSV link in ${p}`);
    }
    const href = await attr('a#report-csv', 'href');
    log(`/reports?kind=daily (no date) links its CSV at ${href}`);
    await shot('report-daily-default-date');
  });
}

// ----------------------------------------------------------------------------------------------------------------
// Main
// ----------------------------------------------------------------------------------------------------------------

let browser;
let failed = false;
const watchdog = setTimeout(() => {
  console.error(`ui.mjs: FAILED: the run took more than ${OVERALL} ms (in step "${currentStep}")`);
  process.exit(1);
}, OVERALL);

try {
  let chromium;
  try {
    ({ chromium } = await import('playwright-core'));
  } catch (e) {
    throw new Error(`playwright-core is not installed: run \`npm ci\` in tests/browser (tests/run.sh does it): ${e.message}`);
  }
  currentStep = `launch ${CHROMIUM}`;
  try {
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      timeout: 2 * T,
    });
  } catch (e) {
    throw new Error(`cannot start Chromium ${CHROMIUM} (apt-get install chromium chromium-driver): ${e.message}`);
  }
  log(`Chromium ${browser.version()}; ${BASE}; artifacts in ${ARTIFACTS}`);
  const context = await browser.newContext({ acceptDownloads: true, viewport: { width: 1280, height: 900 } });
  context.setDefaultTimeout(T);
  context.setDefaultNavigationTimeout(T);
  page = await context.newPage();
  page.on('pageerror', (e) => {
    pageErrors.push(`${page.url()}: ${e.message}`);
    log(`[page error] ${e.message}`);
  });
  page.on('console', (m) => {
    if (m.type() === 'error') log(`[console error] ${page.url()}: ${m.text()}`);
  });

  await flowPassword();
  await flowRingingToTask();
  await flowCloseTask();
  await flowHours();
  await flowLanguage();
  await flowReport();
  if (pageErrors.length) log(`note: ${pageErrors.length} uncaught script error(s) in the pages:\n  ${pageErrors.join('\n  ')}`);
  log('all browser flows passed');
} catch (e) {
  failed = true;
  console.error(`\nui.mjs: FAILED in step "${currentStep}":\n${e && e.stack ? e.stack : e}\n`);
  if (page) {
    try {
      await page.screenshot({ path: path.join(ARTIFACTS, 'failure.png'), fullPage: true, timeout: T });
      writeFileSync(path.join(ARTIFACTS, 'failure.html'), await page.content());
      console.error(`ui.mjs: the page was ${page.url()}; see failure.png and failure.html in ${ARTIFACTS}`);
    } catch (e2) {
      console.error(`ui.mjs: (could not save the failure screenshot: ${e2.message.split('\n')[0]})`);
    }
  }
} finally {
  if (browser) await browser.close().catch(() => {});
  clearTimeout(watchdog);
}
process.exit(failed ? 1 : 0);
