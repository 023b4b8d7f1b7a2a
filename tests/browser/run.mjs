// The dashboard and the customer portal in a real browser: Debian's Chromium, headless, driven
// by playwright-core against a real `tollgate serve` (started by .ci/browser.sh), with axe-core's
// accessibility checks on every page. Screenshots of each page go to docs/images/.
// Usage: BASE=http://127.0.0.1:PORT ADMIN_KEY=... node run.mjs
import { chromium } from 'playwright-core';
import { AxeBuilder } from '@axe-core/playwright';
import { readFileSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
const images = path.join(root, 'docs/images');
mkdirSync(images, { recursive: true });
const BASE = process.env.BASE;
const ADMIN_KEY = process.env.ADMIN_KEY;
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
if (!BASE || !ADMIN_KEY) throw new Error('BASE and ADMIN_KEY must be set');

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
const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] });
const context = await browser.newContext({ acceptDownloads: true, viewport: { width: 1280, height: 860 } });
const page = await context.newPage();
// Any script error or refused resource (the content security policy) fails the run.
const consoleErrors = [];
// (A 404 is reported by the response listener with its URL; the browser's own favicon request
// is not a page's.)
page.on('console', (msg) => {
  if (msg.type() === 'error' && !msg.text().startsWith('Failed to load resource')) consoleErrors.push(msg.text());
});
page.on('pageerror', (error) => consoleErrors.push(String(error)));
page.on('response', (r) => {
  if (r.status() >= 400 && !r.url().endsWith('/favicon.ico')) consoleErrors.push(`${r.status()} ${r.url()}`);
});

async function axe(name) {
  const results = await new AxeBuilder({ page }).analyze();
  const bad = results.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  for (const v of bad) console.log(`     ${v.id} (${v.impact}): ${v.help} — ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
  check(bad.length === 0, `${name}: no serious or critical axe violation (${results.violations.length} minor)`);
}

async function shot(name) {
  await page.screenshot({ path: path.join(images, `${name}.png`), fullPage: true });
  await axe(name);
}

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
await shot('dashboard-events');
for (const [link, name] of [['Webhooks', 'dashboard-webhooks'], ['Emails', 'dashboard-emails'], ['Test clocks', 'dashboard-test-clocks']]) {
  await page.click(`nav >> text=${link}`);
  await shot(name);
}

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

for (const e of consoleErrors) console.log(`     console: ${e}`);
check(consoleErrors.length === 0, 'no script error and nothing refused by the content security policy on the dashboard');
await browser.close();
if (failures > 0) {
  console.log(`${failures} check(s) failed`);
  process.exit(1);
}
console.log('all browser checks passed');
