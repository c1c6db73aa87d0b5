// The dashboard as a user sees it: Debian's chromium, headless, driven
// through puppeteer-core (tests/daemon/test_web.c starts duetd with --web
// and the example fleet, then runs this).  Every step that fails says
// which; screenshots of each page are kept in $DUET_WEB_SHOTS.
//
//   DUET_WEB_MODULES  the node_modules holding puppeteer-core
//   DUET_WEB_BASE     http://127.0.0.1:PORT
//   DUET_WEB_LOGIN    the URL `duet dashboard` printed (with the token)
//   DUET_WEB_SHOTS    where screenshots go
//   DUET_WEB_ROWS     JSON {name: backend} the fleet page must show
//   DUET_WEB_STOP     a running workload the test stops, then starts
//   DUET_WEB_LOGS     a workload and a line its log has: NAME=TEXT
//   DUET_BIN, DUET_SOCKET  the duet command and duetd's socket
import { createRequire } from 'node:module';
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';

const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is not set`);
  return v;
};
const require = createRequire(env('DUET_WEB_MODULES') + '/');
const puppeteer = require('puppeteer-core');

const base = env('DUET_WEB_BASE');
const shots = env('DUET_WEB_SHOTS');
const rows = JSON.parse(env('DUET_WEB_ROWS'));
const stopName = env('DUET_WEB_STOP');
const [logsName, logsText] = env('DUET_WEB_LOGS').split(/=(.*)/s);
mkdirSync(shots, { recursive: true });

const step = (what) => console.log(`dashboard: ${what}`);
const duet = (...args) => execFileSync(env('DUET_BIN'), args, { encoding: 'utf8', env: process.env });

const browser = await puppeteer.launch({
  executablePath: process.env.DUET_CHROMIUM || '/usr/bin/chromium',
  headless: true,
  // Root in a test: no sandbox.  Nothing of the browser's own that talks
  // to the network (updates, sync, safe browsing) is started.
  args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--no-default-browser-check',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--disable-default-apps', '--disable-extensions', '--metrics-recording-only',
    '--window-size=1400,900'],
  defaultViewport: { width: 1400, height: 900 },
});

let failed = false;
const requests = [];
const problems = [];
try {
  const page = await browser.newPage();
  page.on('request', (r) => requests.push(r.url()));
  page.on('pageerror', (e) => problems.push('page error: ' + e.message));
  // An answer of 4xx is the browser's console error too: those the test
  // causes (the 401, the plan's 422) are expected; script errors are not.
  page.on('console', (m) => {
    if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) problems.push('console: ' + m.text());
  });
  let navigations = 0;
  page.on('framenavigated', (f) => { if (f === page.mainFrame()) navigations++; });

  step('without the token: 401');
  const anon = await page.goto(base + '/');
  if (anon.status() !== 401) throw new Error(`GET / without the token answered ${anon.status()}, not 401`);

  step('log in with the token');
  await page.goto(env('DUET_WEB_LOGIN'));
  if (new URL(page.url()).pathname !== '/') throw new Error(`after the login the page is ${page.url()}`);
  await page.waitForSelector('#fleet tbody tr', { timeout: 20000 });

  step('the example fleet, with its backends');
  for (const [name, backend] of Object.entries(rows)) {
    await page.waitForSelector(`#fleet tr[data-name="${name}"][data-backend="${backend}"]`, { timeout: 20000 })
      .catch(() => { throw new Error(`no row for ${name} as a ${backend}`); });
    const label = await page.$eval(`#fleet tr[data-name="${name}"] .backend`, (e) => e.textContent);
    if (label !== (backend === 'vm' ? 'VM' : 'container')) throw new Error(`${name}'s backend reads ${label}`);
  }
  const why = await page.$eval(`#fleet tr[data-name="${stopName}"] td.why`, (e) => e.textContent);
  if (!why) throw new Error(`${stopName}'s row gives no placement reason`);
  await page.waitForSelector(`#fleet tr[data-name="${stopName}"] [data-state="running"]`, { timeout: 120000 });
  // Sparklines fill from /metrics: a line once two samples are in.
  await page.waitForSelector(`#fleet td[data-spark="mem"][data-name="${stopName}"] polyline`, { timeout: 20000 });
  await page.screenshot({ path: `${shots}/fleet.png`, fullPage: true });

  step(`stop ${stopName} from the command line: the row changes without a reload`);
  const before = navigations;
  duet('stop', stopName);
  await page.waitForSelector(`#fleet tr[data-name="${stopName}"] [data-state="stopped"]`, { timeout: 20000 });
  await page.screenshot({ path: `${shots}/fleet-stopped.png`, fullPage: true });
  duet('start', stopName);
  await page.waitForSelector(`#fleet tr[data-name="${stopName}"] [data-state="running"]`, { timeout: 20000 });
  if (navigations !== before) throw new Error('the page was reloaded to show the change');

  step(`open ${logsName}'s page: describe, events, its logs`);
  await page.$eval(`#fleet tr[data-name="${logsName}"] a`, (a) => a.click());
  await page.waitForSelector(`#whead[data-name="${logsName}"]`, { timeout: 10000 });
  await page.waitForSelector('#facts dl', { timeout: 10000 });
  // The worker waits for the db VM's health check: a guest boots slowly
  // under emulation, slower still beside other tests.
  await page.waitForFunction((t) => document.getElementById('logs').textContent.includes(t), { timeout: 240000 }, logsText)
    .catch(() => { throw new Error(`${logsName}'s logs never showed "${logsText}"`); });
  await page.waitForSelector('#events li', { timeout: 10000 });
  await page.screenshot({ path: `${shots}/workload.png`, fullPage: true });

  step(`restart ${stopName} from its page (--web-write)`);
  // Only the hash changes: the worker's page stays until this one is drawn,
  // so everything below is looked for in the page of stopName.
  await page.goto(base + '/#/w/' + stopName);
  const restart = `#whead[data-name="${stopName}"] button[data-action="restart"]`;
  await page.waitForSelector(restart, { timeout: 10000 });
  await page.waitForSelector('#events li', { timeout: 10000 });
  // Clicked in the page, where finding the button and clicking it are one
  // step (a live update may draw the head again).
  await page.$eval(restart, (b) => b.click());
  await page.waitForFunction(() => [...document.querySelectorAll('#events li .type')].some((e) => e.textContent === 'restart'),
    { timeout: 20000 }).catch(() => { throw new Error('no restart event after the button'); });
  // It was this workload that restarted, by the daemon's own account.
  const events = execFileSync(env('DUET_BIN'), ['events'], { encoding: 'utf8', env: process.env });
  if (!events.split('\n').some((l) => l.includes(stopName) && l.includes('restarted on request')))
    throw new Error(`duet events has no restart of ${stopName}:\n${events}`);

  step('a broken manifest on the plan page: the error at its line');
  await page.goto(base + '/#/plan');
  await page.waitForSelector('#manifest');
  const broken = ['apiVersion: duet/v1', 'kind: Workload', 'metadata:', '  name: broken', 'spec:',
    '  role: app', '  restart: sometimes', '  image:', '    rootfs: /nonexistent'].join('\n');
  await page.$eval('#manifest', (t, v) => { t.value = v; t.dispatchEvent(new Event('input')); }, broken);
  await page.$eval('#planbtn', (b) => b.click());
  await page.waitForSelector('.diag[data-line="7"]', { timeout: 10000 })
    .catch(async () => { throw new Error('no error at line 7: ' + await page.$eval('#planout', (e) => e.textContent)); });
  const diag = await page.$eval('.diag[data-line="7"]', (e) => e.textContent);
  if (!/line 7, column \d+: .*restart/.test(diag)) throw new Error(`the error reads "${diag}"`);
  const marked = await page.$eval('#gutter .err', (e) => e.textContent);
  if (marked !== '7') throw new Error(`the gutter marks line ${marked}`);
  await page.screenshot({ path: `${shots}/plan-error.png`, fullPage: true });

  step('a good manifest plans');
  await page.$eval('#manifest', (t, v) => { t.value = v; t.dispatchEvent(new Event('input')); },
    broken.replace('sometimes', 'always').replace('/nonexistent', env('DUET_ROOTFS')) + '\n  command: ["/bin/true"]\n');
  await page.$eval('#planbtn', (b) => b.click());
  await page.waitForSelector('#plantable tr td', { timeout: 10000 });

  step('the compare page');
  await page.goto(base + '/#/compare');
  await page.waitForFunction(() => document.querySelector('main h1') && document.querySelector('main h1').textContent === 'Compare');
  await page.screenshot({ path: `${shots}/compare.png`, fullPage: true });

  step('every request stayed on 127.0.0.1');
  const origin = new URL(base).origin;
  const away = requests.filter((u) => !u.startsWith(origin + '/') && !u.startsWith('data:'));
  if (away.length) throw new Error('requests left the dashboard: ' + away.join(', '));
  if (problems.length) throw new Error(problems.join('; '));
  console.log(`dashboard: ok (${requests.length} requests, all to ${origin})`);
} catch (e) {
  failed = true;
  console.error('dashboard: FAILED: ' + e.message);
  try {
    const pages = await browser.pages();
    if (pages.length) await pages[pages.length - 1].screenshot({ path: `${shots}/failure.png`, fullPage: true });
  } catch (x) { /* the browser went */ }
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
