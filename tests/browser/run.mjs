// The dashboard and the customer portal in a real browser: Debian's Chromium, headless, driven
// by playwright-core against a real `tollgate serve` (started by .ci/browser.sh), with axe-core's
// accessibility checks on every page. Screenshots of each page go to docs/images/. The public
// pages (pricing, its embed, the hosted signup, a partner's custom domain and the portal's
// sign-in by email) are driven too: the sign-in email is caught by a small SMTP sink run here,
// which the server sends to (`--smtp-url smtp://127.0.0.1:SMTP_PORT --smtp-tls none`).
// Usage: BASE=http://127.0.0.1:PORT ADMIN_KEY=... SMTP_PORT=... node run.mjs
import { chromium } from 'playwright-core';
import { AxeBuilder } from '@axe-core/playwright';
import { readFileSync, mkdirSync } from 'node:fs';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
const images = path.join(root, 'docs/images');
mkdirSync(images, { recursive: true });
const BASE = process.env.BASE;
const ADMIN_KEY = process.env.ADMIN_KEY;
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const SMTP_PORT = Number(process.env.SMTP_PORT);
if (!BASE || !ADMIN_KEY || !SMTP_PORT) throw new Error('BASE, ADMIN_KEY and SMTP_PORT must be set');
// The white-label partner's own hostname: Chromium resolves it to this machine
// (--host-resolver-rules), so its requests reach the server with `Host: PARTNER_HOST:port`.
const PARTNER_HOST = 'billing.northwind.example';
const PARTNER = `http://${PARTNER_HOST}:${new URL(BASE).port}`;

// ---- the SMTP sink: answers every command and keeps each message's text ----
const mails = [];
// A message's text with its transfer encodings undone, for searching: quoted-printable soft
// breaks joined and `=XX` decoded, and every base64 part decoded beside it.
function mailText(raw) {
  const parts = [raw.replace(/=\r\n/g, '').replace(/=([0-9A-F]{2})/g, (_, h) => String.fromCharCode(parseInt(h, 16)))];
  for (const m of raw.matchAll(/Content-Transfer-Encoding: base64\r\n(?:[^\r\n]+\r\n)*\r\n([A-Za-z0-9+/=\r\n]+)/gi)) {
    parts.push(Buffer.from(m[1].replace(/\s/g, ''), 'base64').toString('utf8'));
  }
  return parts.join('\n');
}
const smtp = net.createServer((socket) => {
  let buffer = '';
  let data = null; // the message's lines while in DATA
  const say = (line) => socket.write(`${line}\r\n`);
  socket.on('error', () => {});
  say('220 sink ESMTP');
  socket.on('data', (chunk) => {
    buffer += chunk.toString('latin1');
    for (let at = buffer.indexOf('\r\n'); at >= 0; at = buffer.indexOf('\r\n')) {
      const line = buffer.slice(0, at);
      buffer = buffer.slice(at + 2);
      if (data !== null) {
        if (line === '.') {
          const raw = Buffer.from(data.join('\r\n'), 'latin1').toString('utf8');
          const header = (name) => (raw.match(new RegExp(`^${name}: (.*)$`, 'mi')) || [])[1] || '';
          mails.push({ to: header('To'), subject: header('Subject'), text: mailText(raw) });
          data = null;
          say('250 queued');
        } else {
          data.push(line.startsWith('.') ? line.slice(1) : line);
        }
        continue;
      }
      const verb = line.slice(0, 4).toUpperCase();
      if (verb === 'EHLO') socket.write('250-sink\r\n250 8BITMIME\r\n');
      else if (verb === 'DATA') {
        data = [];
        say('354 end with <CRLF>.<CRLF>');
      } else if (verb === 'QUIT') {
        say('221 bye');
        socket.end();
      } else say('250 ok');
    }
  });
});
await new Promise((resolve, reject) => {
  smtp.once('error', reject);
  smtp.listen(SMTP_PORT, '127.0.0.1', resolve);
});

let failures = 0;
function check(ok, what) {
  if (ok) {
    console.log(`ok   ${what}`);
  } else {
    failures += 1;
    console.log(`FAIL ${what}`);
  }
}

async function api(key, method, url, body) {
  const response = await fetch(BASE + url, {
    method,
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  const json = text ? JSON.parse(text) : null;
  if (!response.ok) throw new Error(`${method} ${url}: ${response.status} ${text}`);
  return json;
}

const stamp = Date.now().toString(36);
async function workspace(slug, name, catalog, extra = '') {
  const id = `ws_${slug}_${stamp}`;
  const created = await api(ADMIN_KEY, 'POST', '/v1/workspaces', { id, name });
  const yaml = readFileSync(path.join(root, 'examples/catalogs', catalog), 'utf8') + extra;
  await api(created.admin_key, 'PUT', '/v1/catalog', { yaml });
  return { id, key: created.admin_key };
}

async function subscriber(ws, id, name, plan, start) {
  const clock = await api(ws.key, 'POST', '/v1/test_clocks', { frozen_time: start });
  await api(ws.key, 'POST', '/v1/customers', { id, name, email: `${id}@example.com`, test_clock: clock.id });
  const sub = await api(ws.key, 'POST', `/v1/customers/${id}/subscriptions`, { plan, trial: false });
  await api(ws.key, 'POST', `/v1/customers/${id}/keys`, { name: 'production' });
  return { clock: clock.id, sub: sub.id };
}

// ---- data: the operator's workspace (QLP) and a white-label partner's (on Levqor) ----
// QLP case 6's costs, for the margins page.
const costs = '\ncosts:\n  generations: { dimension: tier, rates: { T0: "0.03", T3: "0.12" } }\n';
const qlp = await workspace('qlp', 'QLP', 'qlp.yaml', costs);
const password = 'correct horse battery staple';
await api(qlp.key, 'POST', '/v1/users', { email: 'admin@qlp.example', password, role: 'admin' });
const starts = ['2026-06-03', '2026-07-11', '2026-08-20', '2026-09-05', '2026-10-14', '2026-11-02'];
const plans = ['professional', 'starter', 'starter', 'enterprise', 'starter', 'professional'];
const names = ['Acme Robotics', 'Globex', 'Initech', 'Umbrella Labs', 'Hooli', 'Stark Industries'];
for (let i = 0; i < starts.length; i += 1) {
  await subscriber(qlp, `cus_${names[i].split(' ')[0].toLowerCase()}`, names[i], plans[i], `${starts[i]}T00:00:00Z`);
}
// One customer leaves at its period end.
const leaver = await subscriber(qlp, 'cus_wayne', 'Wayne Enterprises', 'starter', '2026-07-01T00:00:00Z');
await api(qlp.key, 'POST', `/v1/customers/cus_wayne/subscriptions/${leaver.sub}/cancel`, {});
// QLP case 1 on pay as you go, invoiced at the end of November (margins).
const payg = await subscriber(qlp, 'cus_payg', 'Payg Studio', 'payg', '2026-11-01T00:00:00Z');
const generations = [];
for (const [tier, model, n] of [['T0', 'standard', 10], ['T2', 'standard', 4], ['T3', 'gpt-4', 2]]) {
  for (let i = 0; i < n; i += 1) {
    generations.push({ id: `g_${tier}_${i}`, customer: 'cus_payg', type: 'codegen.completed', properties: { tier, model } });
  }
}
await api(qlp.key, 'POST', `/v1/test_clocks/${payg.clock}/advance`, { frozen_time: '2026-11-10T00:00:00Z' });
await api(qlp.key, 'POST', '/v1/events', { events: generations });
await api(qlp.key, 'POST', `/v1/test_clocks/${payg.clock}/advance`, { frozen_time: '2026-12-01T00:00:00Z' });
await api(qlp.key, 'POST', '/v1/bill_runs', {});
const margins = await api(qlp.key, 'GET', '/v1/analytics/margins?from=2026-11&to=2026-11');
const mrr = await api(qlp.key, 'GET', '/v1/analytics/mrr?from=2025-12&to=2026-11');
const lastMonth = mrr.months[mrr.months.length - 1];

const brand = 'Northwind Automations';
const partner = await workspace('northwind', 'Levqor white label: Northwind', 'levqor.yaml');
await api(partner.key, 'PUT', '/v1/billing_profile', {
  legal_name: 'Northwind Automations Ltd',
  brand: { name: brand, color: '#0f766e' },
});
await subscriber(partner, 'cus_contoso', 'Contoso', 'developer', '2026-11-02T00:00:00Z');
await api(partner.key, 'POST', '/v1/bill_runs', {});
const portal = await api(partner.key, 'POST', '/v1/customers/cus_contoso/portal_sessions');

// ---- the browser ----
const browser = await chromium.launch({
  executablePath: CHROMIUM,
  headless: true,
  args: ['--no-sandbox', `--host-resolver-rules=MAP ${PARTNER_HOST} 127.0.0.1`],
});
const context = await browser.newContext({ acceptDownloads: true, viewport: { width: 1280, height: 860 } });
const page = await context.newPage();
// Any script error or refused resource (the content security policy) fails the run.
const consoleErrors = [];
// (A 404 is reported by the response listener with its URL; the browser's own favicon request
// is not a page's.)
// A refusal the run provokes on purpose (a form answered 4xx with its message) is expected,
// once: `expectRefusal` is its status and URL's end.
let expectRefusal = null;
function watch(p) {
  p.on('console', (msg) => {
    if (msg.type() === 'error' && !msg.text().startsWith('Failed to load resource')) consoleErrors.push(msg.text());
  });
  p.on('pageerror', (error) => consoleErrors.push(String(error)));
  p.on('response', (r) => {
    if (expectRefusal && r.status() === expectRefusal.status && r.url().endsWith(expectRefusal.url)) {
      expectRefusal = null;
      return;
    }
    if (r.status() >= 400 && !r.url().endsWith('/favicon.ico')) consoleErrors.push(`${r.status()} ${r.url()}`);
  });
}
watch(page);

async function axeOn(p, name) {
  const results = await new AxeBuilder({ page: p }).analyze();
  const bad = results.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  for (const v of bad) console.log(`     ${v.id} (${v.impact}): ${v.help} — ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
  check(bad.length === 0, `${name}: no serious or critical axe violation (${results.violations.length} minor)`);
}

async function shotOf(p, name) {
  await p.screenshot({ path: path.join(images, `${name}.png`), fullPage: true });
  await axeOn(p, name);
}

const axe = (name) => axeOn(page, name);
const shot = (name) => shotOf(page, name);

// Sign in with the keyboard only: Tab reaches each labelled field in order.
await page.goto(`${BASE}/admin/login`);
await shot('dashboard-login');
await page.keyboard.press('Tab');
check(await page.evaluate(() => document.activeElement.id) === 'workspace', 'Tab reaches the workspace field first');
await page.keyboard.type(qlp.id);
await page.keyboard.press('Tab');
check(await page.evaluate(() => document.activeElement.id) === 'email', 'then the email field');
await page.keyboard.type('admin@qlp.example');
await page.keyboard.press('Tab');
check(await page.evaluate(() => document.activeElement.id) === 'password', 'then the password field');
await page.keyboard.type(password);
await page.keyboard.press('Enter');
await page.waitForURL(`${BASE}/admin`);
check(page.url() === `${BASE}/admin`, 'signed in by keyboard lands on the home page');
const shownMrr = (await page.textContent('[data-figure="mrr"]')).trim();
const apiMrr = `${(lastMonth.end_minor / 100).toFixed(2)} USD`;
check(shownMrr === apiMrr, `home MRR ${shownMrr} equals the API's ${apiMrr}`);
await shot('dashboard-home');

await page.click('nav >> text=Customers');
await page.fill('#q', 'glob');
await page.click('button:has-text("Search")');
check((await page.locator('tbody tr').count()) === 1, 'customer search finds one');
await shot('dashboard-customers');
await page.click('text=cus_globex');
check((await page.textContent('main')).includes('Starter'), 'customer detail shows the plan');
await shot('dashboard-customer');

await page.click('nav >> text=Invoices');
await shot('dashboard-invoices');
await page.locator('tbody tr a').first().click();
await shot('dashboard-invoice');
const [download] = await Promise.all([page.waitForEvent('download'), page.click('text=Download PDF')]);
const pdf = readFileSync(await download.path());
check(pdf.subarray(0, 4).toString() === '%PDF', `invoice PDF downloaded (${download.suggestedFilename()})`);

await page.click('nav >> text=Analytics');
await page.fill('#from', '2025-12');
await page.fill('#to', '2026-11');
await page.click('button:has-text("Show")');
const shownEnd = (await page.textContent('tr[data-month="2026-11"] [data-figure="end"]')).trim();
check(shownEnd === apiMrr, `analytics November MRR ${shownEnd} equals the API's ${apiMrr}`);
await page.waitForSelector('#mrr-uplot canvas', { timeout: 5000 }).catch(() => {});
check((await page.locator('#mrr-uplot canvas').count()) > 0, 'uPlot draws the MRR chart (vendored, from this server)');
check(await page.locator('#mrr-svg').isHidden(), 'and the server-drawn SVG (the chart without JavaScript) steps aside');
await shot('dashboard-analytics');

await page.click('nav >> text=Margins');
await page.fill('#from', '2026-11');
await page.fill('#to', '2026-11');
await page.click('button:has-text("Show")');
const genRow = (await page.textContent('tr[data-meter="generations"]')).replace(/\s+/g, ' ');
const apiGen = margins.meters.find((m) => m.meter === 'generations');
check(apiGen && apiGen.revenue_minor === 700 && apiGen.cost_minor === 54, `API margins: generations 7.00 revenue, 0.54 cost (${JSON.stringify(apiGen)})`);
check(genRow.includes('7.00 USD') && genRow.includes('0.54 USD') && genRow.includes('6.46 USD'), `margins page shows the API's generations row: ${genRow}`);
await shot('dashboard-margins');

await page.click('nav >> text=Revenue');
await page.fill('#from', '2026-06');
await page.fill('#to', '2026-11');
await page.click('button:has-text("Show")');
const retention = await api(qlp.key, 'GET', '/v1/analytics/retention?from=2026-06&to=2026-11');
const revenue = await api(qlp.key, 'GET', '/v1/analytics/revenue?from=2026-06&to=2026-11');
const lastRetention = retention.months[retention.months.length - 1];
const shownNrr = (await page.textContent('tr[data-month="2026-11"] [data-figure="nrr"]')).trim();
const apiNrr = lastRetention.net_revenue_retention_percent === null ? '–' : `${lastRetention.net_revenue_retention_percent} %`;
check(shownNrr === apiNrr, `revenue page November NRR ${shownNrr} equals the API's ${apiNrr}`);
const shownTotal = (await page.textContent('tr[data-plan-month="2026-11"] [data-figure="total"]')).trim();
const lastRevenue = revenue.months[revenue.months.length - 1];
const apiTotal = `${(lastRevenue.total_minor / 100).toFixed(2)} USD`;
check(shownTotal === apiTotal, `revenue page November invoiced ${shownTotal} equals the API's ${apiTotal}`);
await shot('dashboard-revenue');

// Price simulation: starter at $109.00 instead of $99.00 and T0 generations at $0.12, nothing
// applied (the pay-as-you-go customer's closed November: 10 T0 -> +0.20).
const qlpYaml = readFileSync(path.join(root, 'examples/catalogs/qlp.yaml'), 'utf8') + costs;
const draftYaml = qlpYaml
  .replace('base: { amount: "99.00", interval: month }', 'base: { amount: "109.00", interval: month }')
  .replace('T0: "0.10"', 'T0: "0.12"');
const simulation = await api(qlp.key, 'POST', '/v1/analytics/simulations', { yaml: draftYaml });
await page.click('nav >> text=Simulation');
check((await page.inputValue('#yaml')).includes('starter:'), 'the simulation form holds the current catalog');
await page.fill('#yaml', draftYaml);
await page.click('button:has-text("Simulate")');
const shownDifference = (await page.textContent('tr[data-plan="total"] [data-figure="difference"]')).trim();
const d = simulation.total.difference_minor;
const apiDifference = `${d > 0 ? '+' : ''}${(d / 100).toFixed(2)} USD`;
check(d === 20, `API simulation: +0.20 on the pay-as-you-go customer's November (${d})`);
check(shownDifference === apiDifference, `simulation page difference ${shownDifference} equals the API's ${apiDifference}`);
await shot('dashboard-simulation');

// Operations pages: the catalog, events (the payg customer's, on its clock), webhooks, emails,
// test clocks.
await page.click('nav >> text=Catalog');
check((await page.textContent('[data-figure="version"]')).trim() === '1', 'catalog page shows version 1');
check((await page.locator('thead th[data-plan]').count()) === 5, 'catalog page shows the five plans side by side');
await shot('dashboard-catalog');
await page.click('nav >> text=Events');
await page.fill('#customer', 'cus_payg');
await page.fill('#from', '2026-11-01T00:00:00Z');
await page.click('button:has-text("Filter")');
await page.waitForURL(/customer=cus_payg/);
await page.waitForSelector('tbody tr[data-event]');
check(page.url().includes('customer=cus_payg'), 'htmx filters the events in place and keeps the URL shareable');
check((await page.locator('tbody tr[data-event]').count()) === 16, 'events page lists the payg customer\'s 16 generations');
// The live tail: events sent through the API while the page is open appear without a reload,
// the page's filter (customer) applied to them.
const beforeTail = page.url();
await api(qlp.key, 'POST', '/v1/events', {
  events: [
    { id: 'live_payg_1', customer: 'cus_payg', type: 'codegen.completed', properties: { tier: 'T0', model: 'standard' } },
    { id: 'live_other_1', customer: 'cus_globex', type: 'codegen.completed', timestamp: '2026-12-01T00:00:00Z', properties: { tier: 'T0', model: 'standard' } },
  ],
});
const tailed = await page.waitForSelector('tbody tr[data-event="live_payg_1"]', { timeout: 10000 }).then(() => true, () => false);
check(tailed, 'the live tail shows the new event without a reload');
check(page.url() === beforeTail, 'the page was not reloaded');
check((await page.locator('tbody tr[data-event]').count()) === 17, 'the tail kept the customer filter (the other customer\'s event is not shown)');
check(await page.locator('#events-live a:has-text("Refresh")').count() === 1, 'a refresh link for browsers without scripts');
await shot('dashboard-events');
for (const [link, name] of [['Webhooks', 'dashboard-webhooks'], ['Emails', 'dashboard-emails'], ['Test clocks', 'dashboard-test-clocks']]) {
  await page.click(`nav >> text=${link}`);
  await shot(name);
}

// Credit note from the invoice page: a refused amount keeps the form, then a credit of 1.00.
const paygInvoices = await api(qlp.key, 'GET', '/v1/customers/cus_payg/invoices');
const creditable = paygInvoices.data.find((i) => i.status === 'open' && Number(i.total) > 1);
check(Boolean(creditable), `the payg customer has an open invoice to credit (${paygInvoices.data.map((i) => `${i.status} ${i.total}`).join(', ')})`);
if (creditable) {
  await page.goto(`${BASE}/admin/invoices/${creditable.id}`);
  await page.fill('#cn-amount', '9999.00');
  await page.fill('#cn-reason', 'Model outage on 14 November');
  await page.check('input[name="method"][value="credit"]');
  expectRefusal = { status: 409, url: `/admin/invoices/${creditable.id}/credit_notes` };
  await page.click('button:has-text("Issue the credit note")');
  await page.waitForSelector('#credit-error');
  check((await page.textContent('#credit-error')).includes('exceed'), 'too large a credit is refused with a clear message');
  check(await page.inputValue('#cn-reason') === 'Model outage on 14 November', 'and the form keeps what was typed');
  check(expectRefusal === null, 'the refusal was answered 409');
  await axe('dashboard-credit-note-refused');
  await page.fill('#cn-amount', '1.00');
  await page.click('button:has-text("Issue the credit note")');
  await page.waitForSelector('#credit-note-issued');
  check(page.url().includes('?credit_note=cn_'), 'the credit note redirects back to the invoice (post/redirect/get)');
  const after = await api(qlp.key, 'GET', `/v1/invoices/${creditable.id}`);
  check(after.credited === '1.00', `the API shows the invoice credited 1.00 (${after.credited})`);
  check((await page.textContent('main')).includes('Model outage on 14 November'), 'the invoice page lists the credit note and its reason');
  await shot('dashboard-credit-note');
}

// Operators: the admin adds one and sees it listed.
await page.click('nav >> text=Operators');
await page.fill('#new-email', 'finance@qlp.example');
await page.selectOption('#new-role', 'billing');
await page.fill('#new-password', 'another long pass phrase');
await page.click('button:has-text("Add the operator")');
await page.waitForURL(/done=added/);
check(await page.locator('tr[data-user="finance@qlp.example"] [data-role="billing"]').count() === 1, 'the operators page adds a billing operator');
const users = await api(qlp.key, 'GET', '/v1/users');
check(users.data.some((u) => u.email === 'finance@qlp.example' && u.role === 'billing'), 'and the API lists it');
await shot('dashboard-users');

// ---- the partner's portal ----
const portalPage = await context.newPage();
const visit = async (p) => {
  const text = (await p.content()).toLowerCase();
  check(!text.includes('levqor') && !text.includes('tollgate'), `${p.url()}: no operator brand in the page`);
  check(text.includes(brand.toLowerCase()), `${p.url()}: the partner's brand is shown`);
};
await portalPage.goto(portal.url);
await visit(portalPage);
await portalPage.click('#continue');
await portalPage.waitForURL(`${BASE}/portal`);
await visit(portalPage);
{
  const old = page;
  // axe and screenshots on the portal page
  const results = await new AxeBuilder({ page: portalPage }).analyze();
  const bad = results.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  for (const v of bad) console.log(`     ${v.id} (${v.impact}): ${v.help} — ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
  check(bad.length === 0, 'portal: no serious or critical axe violation');
  await portalPage.screenshot({ path: path.join(images, 'portal.png'), fullPage: true });
  void old;
}
await portalPage.click('button:has-text("Switch to Professional")');
await portalPage.waitForURL(`${BASE}/portal`);
check((await portalPage.textContent('[data-figure="plan"]')).includes('Professional'), 'plan changed to Professional in the portal');
const subs = await api(partner.key, 'GET', '/v1/customers/cus_contoso/subscriptions');
check(subs.data[0].plan === 'professional', 'and through the API');
await visit(portalPage);
await portalPage.screenshot({ path: path.join(images, 'portal-after-upgrade.png'), fullPage: true });
const [portalPdf] = await Promise.all([portalPage.waitForEvent('download'), portalPage.locator('a:has-text("Download")').first().click()]);
check(readFileSync(await portalPdf.path()).subarray(0, 4).toString() === '%PDF', 'portal invoice PDF downloaded');


// ---- public pages (issue 16): off by default, turned on by the admin on the dashboard ----
await api(qlp.key, 'PUT', '/v1/billing_profile', {
  legal_name: 'Quantum Layer Platform Inc.',
  brand: { name: 'Quantum Layer Platform', color: '#4338ca' },
});
const publicOff = await api(qlp.key, 'GET', '/v1/public_pages');
check(publicOff.enabled === false, 'public pages are off by default');
const closed = await fetch(`${BASE}${publicOff.pricing_path}`);
check(closed.status === 404, `while they are off the pricing page is not found (${closed.status})`);
await page.click('nav >> text=Public pages');
check((await page.textContent('[data-figure="public"]')).trim() === 'off', 'the Public pages page says off');
await page.click('button:has-text("Turn the public pages on")');
await page.waitForSelector('[data-figure="public"]:text-is("on")');
const publicOn = await api(qlp.key, 'GET', '/v1/public_pages');
check(publicOn.enabled === true, 'the admin turned them on from the dashboard, and the API says so');
await shot('dashboard-public');

// A visitor: its own browser context (no operator cookie).
const visitor = await browser.newContext({ viewport: { width: 1280, height: 860 } });
const pub = await visitor.newPage();
watch(pub);
const catalog = await api(qlp.key, 'GET', '/v1/catalog');
const planKeys = Object.keys(catalog.catalog.plans).sort();
await pub.goto(`${BASE}${publicOn.pricing_path}`);
const shownPlans = (await pub.locator('thead th[data-plan]').evaluateAll((ths) => ths.map((t) => t.dataset.plan))).sort();
check(JSON.stringify(shownPlans) === JSON.stringify(planKeys), `the pricing page shows the catalog's plans side by side (${shownPlans.join(', ')})`);
check((await pub.textContent('table')).includes('99.00'), "and their prices (Starter's 99.00)");
check(!(await pub.content()).toLowerCase().includes('tollgate'), 'the pricing page does not name Tollgate');
check((await pub.textContent('header')).includes('Quantum Layer Platform'), "it is branded with the seller profile's brand");
await shotOf(pub, 'public-pricing');

// The embed, framed by another page (the operator's site): it may be framed, and its links
// open the signup in the whole window.
const site = await visitor.newPage();
watch(site);
await site.setContent(`<!doctype html><html lang="en"><head><title>Quantum Layer Platform</title></head>
<body style="font-family: sans-serif; margin: 2rem; background: #f8fafc"><main>
<h1>Quantum Layer Platform: code generation for teams</h1><p>Our plans (a pricing table embedded from the billing server):</p>
<iframe src="${BASE}${publicOn.embed_path}" title="Pricing" style="width:100%;height:46rem;border:0"></iframe>
</main></body></html>`);
const embed = site.frameLocator('iframe');
await embed.locator('thead th[data-plan]').first().waitFor({ timeout: 5000 });
check((await embed.locator('thead th[data-plan]').count()) === planKeys.length, 'the embed shows the plans inside a frame');
const targets = await embed.locator('a.button').evaluateAll((as) => as.map((a) => a.target));
check(targets.length === planKeys.length && targets.every((t) => t === '_top'), 'the embed links open the signup in the whole window');
await shotOf(site, 'public-pricing-embed');

// A plan's signup link, followed from the pricing page; the hosted form filled and sent.
await pub.click('a.button[href*="plan=starter"]');
await pub.waitForURL(/\/signup\/[^?]+\?plan=starter$/);
check((await pub.inputValue('#plan')) === 'starter', 'the signup form has the chosen plan selected');
await shotOf(pub, 'public-signup');
const email = `ada.${stamp}@example.com`;
await pub.fill('#name', 'Ada Lovelace');
await pub.fill('#email', email);
const [answer] = await Promise.all([
  pub.waitForResponse((r) => r.request().method() === 'POST' && r.url().includes('/signup/')),
  pub.click('form button[type="submit"]'),
]);
check(answer.status() === 201, `the signup answers 201 (${answer.status()})`);
await pub.waitForSelector('[data-secret]');
const secret = (await pub.textContent('[data-secret]')).trim();
const customerId = (await pub.textContent('main')).match(/cus_[A-Za-z0-9_]+/)?.[0];
check(Boolean(customerId) && secret.length > 20, `the result shows the customer ${customerId} and its key once`);
await shotOf(pub, 'public-signup-done');
const made = await api(qlp.key, 'GET', `/v1/customers/${customerId}`);
const madeSubs = await api(qlp.key, 'GET', `/v1/customers/${customerId}/subscriptions`);
check(made.email === email && madeSubs.data.length === 1 && madeSubs.data[0].plan === 'starter' && madeSubs.data[0].status === 'trialing',
  `the API has the customer, on a Starter trial (${madeSubs.data.map((x) => `${x.plan} ${x.status}`).join(', ')})`);
// The key shown once works: a check with it is allowed; a key one character off is refused.
const checkWith = (key) => fetch(`${BASE}/v1/check`, {
  method: 'POST',
  headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
  body: JSON.stringify({ feature: 'projects' }),
});
const withKey = await checkWith(secret);
const withKeyBody = await withKey.json();
check(withKey.status === 200 && withKeyBody.allowed === true, `a check with the shown key is allowed (${withKey.status} ${JSON.stringify(withKeyBody)})`);
const forged = `${secret.slice(0, -1)}${secret.endsWith('a') ? 'b' : 'a'}`;
const withForged = await checkWith(forged);
check(withForged.status === 401, `and a key one character off is refused (${withForged.status})`);

// ---- the partner's custom domain: its pricing and sign-in, never the operator's brand ----
await api(partner.key, 'PUT', '/v1/email_settings', { from_address: 'billing@northwind.example', brand_name: brand, brand_color: '#0f766e' });
await api(partner.key, 'PUT', '/v1/public_pages', { enabled: true });
await api(partner.key, 'POST', '/v1/domains', { hostname: PARTNER_HOST });
await api(partner.key, 'POST', '/v1/customers', { id: 'cus_fabrikam', name: 'Fabrikam', email: 'it@fabrikam.example' });
await api(partner.key, 'POST', '/v1/customers/cus_fabrikam/subscriptions', { plan: 'developer', trial: false });
const partnerPlans = Object.keys((await api(partner.key, 'GET', '/v1/catalog')).catalog.plans).sort();
const visitor2 = await browser.newContext({ viewport: { width: 1280, height: 860 } });
const pp = await visitor2.newPage();
watch(pp);
const onDomain = async (p) => {
  const text = (await p.content()).toLowerCase();
  const leaks = ['levqor', 'tollgate', partner.id.toLowerCase(), 'quantum layer', '127.0.0.1'].filter((w) => text.includes(w));
  check(leaks.length === 0, `${p.url()}: no operator brand, workspace id or other address in the page (${leaks.join(', ')})`);
  check(text.includes(brand.toLowerCase()), `${p.url()}: the partner's brand is shown`);
};
await pp.goto(`${PARTNER}/pricing`);
check(pp.url() === `${PARTNER}/pricing`, `the partner's pricing page is served at its own domain (${pp.url()})`);
const partnerShown = (await pp.locator('thead th[data-plan]').evaluateAll((ths) => ths.map((t) => t.dataset.plan))).sort();
check(JSON.stringify(partnerShown) === JSON.stringify(partnerPlans), `and shows the partner's plans (${partnerShown.join(', ')})`);
await onDomain(pp);
const offDomain = await pp.locator('a[href]').evaluateAll((as) => as.map((a) => a.href).filter((h) => !h.startsWith(location.origin)));
check(offDomain.length === 0, `every link stays on the partner's domain (${offDomain.join(', ')})`);
await shotOf(pp, 'public-pricing-partner');
await pp.click('nav >> text=Sign in');
await pp.waitForURL(`${PARTNER}/portal/signin`);
await onDomain(pp);
await shotOf(pp, 'public-signin');

// The portal's sign-in by email: the link arrives through SMTP and lands signed in.
await pp.fill('#email', 'IT@fabrikam.example');
await pp.click('form button[type="submit"]');
await pp.waitForSelector('.notice');
check((await pp.textContent('.notice')).includes('we have sent it a sign-in link'), 'the sign-in page says a link was sent');
await onDomain(pp);
await axeOn(pp, 'public-signin (link sent)');
const linkPattern = new RegExp(`${PARTNER.replace(/\./g, '\\.')}/portal/enter/[A-Za-z0-9_]+`);
let signInMail;
for (let i = 0; i < 100 && !signInMail; i += 1) {
  signInMail = mails.find((m) => m.to.includes('it@fabrikam.example') && linkPattern.test(m.text));
  if (!signInMail) await new Promise((r) => setTimeout(r, 200));
}
check(Boolean(signInMail), `the sign-in email reached the SMTP sink (${mails.length} message(s): ${mails.map((m) => m.subject).join(' | ')})`);
if (signInMail) {
  const link = signInMail.text.match(linkPattern)[0];
  check(signInMail.subject.includes(brand) && !/tollgate|levqor/i.test(signInMail.subject), `its subject is the partner's: ${signInMail.subject}`);
  await pp.goto(link);
  await onDomain(pp);
  await pp.click('#continue');
  await pp.waitForURL(`${PARTNER}/portal`);
  check((await pp.textContent('[data-figure="plan"]')).includes('Developer'), "signed in by email on the partner's domain: the portal shows Fabrikam's plan");
  await onDomain(pp);
  // The link works once: opened again (by another browser) it is gone.
  const other = await (await browser.newContext()).newPage();
  const again = await other.goto(link);
  check(again.status() === 410, `the link opened a second time answers 410 (${again.status()})`);
}

for (const e of consoleErrors) console.log(`     console: ${e}`);
check(consoleErrors.length === 0, 'no script error and nothing refused by the content security policy on any page');
await browser.close();
smtp.close();
if (failures > 0) {
  console.log(`${failures} check(s) failed`);
  process.exit(1);
}
console.log('all browser checks passed');
