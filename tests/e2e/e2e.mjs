// End-to-end test of the nexus web UI in a real browser: Debian's Chromium, driven by
// playwright-core (no downloaded browsers).
//
//   NEXUS_E2E_BASE=https://localhost:18443 \
//   NEXUS_E2E_SETUP_URL='https://localhost:18443/setup?token=…' \
//   NEXUS_E2E_OUT=/tmp/e2e-out \
//   node tests/e2e/e2e.mjs
//
// Prints one line per step. Exit code 0 when every step passed; otherwise the failing
// step and why, a screenshot `failure.png` in NEXUS_E2E_OUT, and exit code 1.

import { createHmac } from "node:crypto";
import { mkdirSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium, request } from "playwright-core";

const CHROMIUM = process.env.NEXUS_E2E_CHROMIUM || "/usr/bin/chromium";
const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
];
// Generous: the whole test suite runs beside it, and step 6c waits for the vectors of the
// demo customers, made as the box starts (up to 300 s on a loaded 2-core machine).
const OVERALL_TIMEOUT_MS = 420_000;
const STEP_TIMEOUT_MS = 10_000;
const LIVE_UPDATE_MS = 3_000;
const DESKTOP = { width: 1440, height: 900 };
const TABLET = { width: 820, height: 1180 };

const ADMIN = { username: "admin", fullName: "Ada Admin", password: "correct horse battery" };
const BOB = { username: "bob", fullName: "Bob Sales", password: "bob password 123" };
const CUSTOMER = "E2E Bakery AG";

// ------------------------------------------------------------------ configuration

function config() {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const base = (process.env.NEXUS_E2E_BASE || "").replace(/\/+$/, "");
  const setupUrl = process.env.NEXUS_E2E_SETUP_URL || "";
  const out = path.resolve(process.env.NEXUS_E2E_OUT || path.join(here, "out"));
  const missing = [];
  if (!/^https?:\/\/[^/]+$/.test(base)) missing.push("NEXUS_E2E_BASE (e.g. https://localhost:18443)");
  if (!setupUrl.includes("/setup?token=")) missing.push("NEXUS_E2E_SETUP_URL (https://…/setup?token=…)");
  if (missing.length) {
    console.error(`e2e: missing or malformed environment: ${missing.join(", ")}`);
    process.exit(1);
  }
  mkdirSync(out, { recursive: true });
  return { base, setupUrl, out };
}

const { base: BASE, setupUrl: SETUP_URL, out: OUT } = config();
// The server's clock (the test sets it; it does not move during the run), for TOTP codes.
const SERVER_NOW = Number(process.env.NEXUS_E2E_NOW || Math.floor(Date.now() / 1000));
const url = (p) => BASE + p;
const shot = (name) => path.join(OUT, name);

// ------------------------------------------------------------------ state shared by steps

let browser;
/** Pages by owner; `current` is the one the running step works in (for failure.png). */
const pages = {};
let current;
const pageErrors = [];
let customerId;

// ------------------------------------------------------------------ helpers

class StepFailure extends Error {}

function fail(message) {
  throw new StepFailure(message);
}

function assert(condition, message) {
  if (!condition) fail(message);
}

const show = (v) => JSON.stringify(v);

/**
 * Polls `probe` until `check(value)` holds; fails with the last value seen.
 * `what` says what was expected, e.g. "pager shows 'of 300'".
 */
async function until(what, probe, check, timeout = STEP_TIMEOUT_MS) {
  const deadline = Date.now() + timeout;
  let last;
  let error;
  for (;;) {
    try {
      last = await probe();
      error = undefined;
      if (check(last)) return last;
    } catch (e) {
      error = e;
    }
    if (Date.now() > deadline) {
      const seen = error ? `error: ${describe(error)}` : `got ${show(last)}`;
      fail(`expected ${what} within ${timeout} ms, ${seen}`);
    }
    await sleep(100);
  }
}

/** A Playwright error in one line: the message and the start of its call log. */
function describe(error) {
  const lines = String(error.message ?? error)
    .replace(/\x1b\[[0-9;]*m/g, "")
    .split("\n")
    .map((l) => l.trim())
    .filter(Boolean);
  return lines.slice(0, 4).join(" | ");
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const firstLine = (s) => String(s).split("\n")[0];
/** The element's text as in the DOM (not as CSS shows it: headers are upper-cased). */
const text = async (locator) => squash(await locator.textContent({ timeout: 1000 }));
const squash = (s) => String(s ?? "").replace(/\s+/g, " ").trim();
const pathOf = (page) => new URL(page.url()).pathname;

async function newPage(name, viewport) {
  const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport });
  context.setDefaultTimeout(STEP_TIMEOUT_MS);
  context.setDefaultNavigationTimeout(STEP_TIMEOUT_MS);
  const page = await context.newPage();
  page.on("pageerror", (e) => pageErrors.push(`${name}: ${firstLine(e.message)} (${page.url()})`));
  pages[name] = page;
  return page;
}

/** Navigates and fails on an HTTP error status. */
async function open(page, target) {
  const res = await page.goto(target.startsWith("http") ? target : url(target));
  assert(res, `no response for ${target}`);
  if (res.status() >= 400) {
    const body = (await page.locator("body").innerText().catch(() => "")).trim().slice(0, 200);
    fail(`GET ${target} answered ${res.status()}: ${show(body)}`);
  }
}

/**
 * Resolves once the page that is about to be opened has its live-update stream
 * (`GET /events`) answered, i.e. the server has subscribed it to changes. Requests
 * started before the call (by the previous page) do not count.
 */
function eventsSubscribed(page) {
  const since = Date.now();
  return page
    .waitForResponse((r) => new URL(r.url()).pathname === "/events" && r.request().timing().startTime >= since, {
      timeout: STEP_TIMEOUT_MS,
    })
    .then(
      (r) => assert(r.status() === 200, `GET /events answered ${r.status()}`),
      () => fail(`${page.url()} did not open its live-update stream (GET /events) within ${STEP_TIMEOUT_MS} ms`),
    );
}

async function expectPath(page, re, what) {
  await page.waitForURL((u) => re.test(u.pathname + u.search), { timeout: STEP_TIMEOUT_MS }).catch(() => {
    fail(`expected ${what} (${re}), the browser is at ${page.url()}`);
  });
}

async function expectHeading(page, expected) {
  await until(`heading ${show(expected)}`, () => text(page.locator("main h1").first()), (t) => t === expected);
}

async function expectToast(page, message) {
  await until(
    `a toast ${show(message)}`,
    () => page.locator("#toasts .toast").allTextContents(),
    (ts) => ts.some((t) => t.trim() === message),
    5_000,
  );
}

// ------------------------------------------------------------------ the grid

const rows = (page) => page.locator("#grid tbody tr[data-live-id]");
const pagerText = (page) => text(page.locator("#grid .pager .count"));

/** The 0-based index of a grid column by its header label. */
async function columnIndex(page, label) {
  const headers = (await page.locator("#grid thead th").allTextContents()).map((h) => squash(h.replace(/[▲▼]/g, "")));
  const i = headers.indexOf(label);
  assert(i >= 0, `the grid has no column ${show(label)}; columns: ${show(headers)}`);
  return i;
}

/** The text of one column for every row shown. */
async function columnTexts(page, index) {
  return rows(page).evaluateAll(
    (trs, i) => trs.map((tr) => (tr.children[i] ? tr.children[i].textContent.replace(/\s+/g, " ").trim() : null)),
    index,
  );
}

/** Ascending, compared case-insensitively. */
function assertSortedByName(names, what) {
  for (let i = 1; i < names.length; i++) {
    const [a, b] = [names[i - 1].toLowerCase(), names[i].toLowerCase()];
    assert(a <= b, `${what} are not sorted by name: row ${i} ${show(names[i - 1])} comes before row ${i + 1} ${show(names[i])}`);
  }
}

/** Parses "1–50 of 300". */
function parsePager(t) {
  const m = /^(\d+)–(\d+) of (\d+)$/.exec(t);
  return m ? { first: +m[1], last: +m[2], total: +m[3] } : null;
}

function cityCell(page, id, cityIndex) {
  return page.locator(`#grid tbody tr#row-${id} > td`).nth(cityIndex);
}

// ------------------------------------------------------------------ steps

async function startChromium() {
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, timeout: 30_000 });
  return browser.version();
}

async function setUpAdministrator() {
  const page = (current = await newPage("admin", DESKTOP));
  await open(page, SETUP_URL);
  await page.fill('input[name="username"]', ADMIN.username);
  await page.fill('input[name="full_name"]', ADMIN.fullName);
  await page.fill('input[name="password"]', ADMIN.password);
  await page.fill('input[name="confirm"]', ADMIN.password);
  await page.click('button[type="submit"]');
  await expectPath(page, /^\/$/, "the start page after setup");
  await expectHeading(page, `Good day, ${ADMIN.fullName}`);
}

async function openCustomersFromSidebar() {
  const page = (current = pages.admin);
  await page.locator("nav.sidebar a", { hasText: "CRM" }).first().click();
  await expectPath(page, /^\/e\/customer$/, "the customer grid");
  await until("50 rows", () => rows(page).count(), (n) => n === 50);
  await until("pager text containing 'of 300'", () => pagerText(page), (t) => t.includes("of 300"));
}

async function sortFilterAndPage() {
  const page = (current = pages.admin);

  // Sort by name.
  await page.locator("#grid thead th a", { hasText: /^Name/ }).click();
  await expectPath(page, /[?&]sort=name(&|$)/, "the URL to carry sort=name");
  await until("the Name header marked ascending", () => page.locator('#grid thead th[aria-sort="ascending"]').count(), (n) => n === 1);
  const names = await columnTexts(page, 0);
  assert(names.length === 50, `expected 50 sorted rows, got ${names.length}`);
  assertSortedByName(names, "the rows");

  // Filter by city.
  const city = await columnIndex(page, "City");
  const filter = page.locator('input[name="f.city"]');
  await filter.fill("Zurich");
  await expectPath(page, /[?&]f\.city=Zurich(&|$)/, "the URL to carry f.city=Zurich");
  const zurich = await until(
    "every row's City to be Zurich",
    () => columnTexts(page, city),
    (cities) => cities.length > 0 && cities.every((c) => c === "Zurich"),
  );
  // The grid's state lives in the URL: filtering keeps the sort.
  assert(/[?&]sort=name(&|$)/.test(page.url()), `filtering should keep the sort by name, the URL lost it: ${page.url()}`);
  assertSortedByName(await columnTexts(page, 0), "the Zurich rows");
  const filtered = parsePager(await pagerText(page));
  assert(filtered, `unreadable pager text ${show(await pagerText(page))}`);
  assert(filtered.total > 0 && filtered.total < 300, `expected fewer than 300 customers in Zurich, the pager says ${filtered.total}`);
  assert(zurich.length === Math.min(filtered.total, 50), `the pager says ${filtered.total} but ${zurich.length} rows are shown`);

  await filter.fill("");
  await until("the unfiltered pager '1–50 of 300'", () => pagerText(page), (t) => t === "1–50 of 300");

  // Next page.
  await page.locator("#grid .pager a", { hasText: "Next →" }).click();
  await until("pager '51–100 of 300'", () => pagerText(page), (t) => t === "51–100 of 300");
  await until("50 rows on page two", () => rows(page).count(), (n) => n === 50);
}

async function keyboardShortcuts() {
  const page = (current = pages.admin);
  await page.evaluate(() => document.activeElement && document.activeElement.blur());
  const focus = () => page.evaluate(() => (document.activeElement ? document.activeElement.outerHTML.slice(0, 120) : null));
  const before = await focus();
  assert(/^<body/.test(before), `the body should have the focus before pressing '/', it is on ${before}`);
  await page.keyboard.press("/");
  const focused = await page.evaluate(() => document.activeElement.matches("input[data-shortcut=search]"));
  if (!focused) fail(`'/' should focus the grid filter input[data-shortcut=search], the focus is on ${await focus()}`);
  await page.keyboard.press("Escape");
  await page.evaluate(() => document.activeElement && document.activeElement.blur());
  await page.keyboard.press("n");
  await expectPath(page, /^\/e\/customer\/new$/, "'n' to open /e/customer/new");
  await expectHeading(page, "New customer");
}

async function createCustomerWithErrors() {
  const page = (current = pages.admin);
  await page.fill("#f-name", CUSTOMER);
  await page.fill("#f-email", "not-an-email");
  await page.selectOption('select[name="status"]', { label: "Active" });
  await page.fill("#f-credit_limit", "12.345");
  await page.getByRole("button", { name: "Create customer" }).click();

  await until("field errors (.field-error) to show", () => page.locator(".field-error").count(), (n) => n >= 2);
  const errors = (await page.locator(".field-error").allTextContents()).map(squash);
  const emailError = await text(page.locator("#f-email-error")).catch(() => "");
  const limitError = await text(page.locator("#f-credit_limit-error")).catch(() => "");
  assert(emailError.includes("e-mail address"), `expected an e-mail error mentioning "e-mail address" under E-mail, got ${show(emailError)}; all errors: ${show(errors)}`);
  assert(limitError.includes("two decimal places"), `expected a credit-limit error mentioning "two decimal places", got ${show(limitError)}; all errors: ${show(errors)}`);
  assert(await page.locator(".field-error").first().isVisible(), "the field errors are in the page but not visible");
  const kept = await page.inputValue("#f-name");
  assert(kept === CUSTOMER, `the form should keep the typed name ${show(CUSTOMER)}, it shows ${show(kept)}`);
  assert(pathOf(page) === "/e/customer/new", `a refused form should stay on /e/customer/new, the browser is at ${page.url()}`);

  await page.fill("#f-email", "hello@e2e-bakery.example");
  await page.fill("#f-credit_limit", "1250.50");
  await page.getByRole("button", { name: "Create customer" }).click();
  await expectPath(page, /^\/e\/customer\/\d+(\?.*)?$/, "the new customer's page");
  customerId = Number(/\/e\/customer\/(\d+)/.exec(page.url())[1]);
  await expectToast(page, "Customer created");
  await expectHeading(page, CUSTOMER);
}

async function editOnRecordPage() {
  const page = (current = pages.admin);
  await page.fill("#f-city", "Basel");
  await page.locator("#record-form").getByRole("button", { name: "Save", exact: true }).click();
  await expectToast(page, "Saved");
  const entry = page.locator("#history ol.history > li").filter({ has: page.locator("ins", { hasText: "Basel" }) });
  await until(
    "a History entry with 'Basel' (ins) and 'changed it'",
    async () => ((await entry.count()) ? squash(await entry.first().innerText()) : ""),
    (t) => t.includes("changed it"),
  );
  const value = await page.inputValue("#f-city");
  assert(value === "Basel", `after saving, the City field shows ${show(value)}`);
}

async function createUser() {
  const page = (current = pages.admin);
  await open(page, "/e/user/new");
  await page.fill("#f-username", BOB.username);
  await page.fill("#f-full_name", BOB.fullName);
  await page.selectOption('select[name="role"]', { label: "Sales" });
  assert(await page.isChecked("#f-active"), "the Active box should be checked for a new user");
  await page.fill("#f-password", BOB.password);
  // Creating a user is a change of access: confirmed with the administrator's own password.
  await page.getByRole("button", { name: "Create user" }).click();
  await until(
    "the form asking for the administrator's own password",
    () => text(page.locator("#f-current_password-error")),
    (t) => t.includes("needs your own password"),
  );
  await page.fill("#f-password", BOB.password);
  await page.fill("#f-current_password", ADMIN.password);
  await page.getByRole("button", { name: "Create user" }).click();
  await expectPath(page, /^\/e\/user\/\d+(\?.*)?$/, "the new user's page");
  await expectHeading(page, BOB.fullName);
  await expectToast(page, "User created");
}

async function liveUpdateBetweenUsers() {
  // Bob signs in in a separate context and watches the grid.
  const bob = (current = await newPage("bob", DESKTOP));
  await open(bob, "/login");
  await bob.fill('input[name="username"]', BOB.username);
  await bob.fill('input[name="password"]', BOB.password);
  await bob.getByRole("button", { name: "Sign in" }).click();
  await expectPath(bob, /^\/$/, "bob's start page after sign-in");
  await expectHeading(bob, `Good day, ${BOB.fullName}`);
  const bobSubscribed = eventsSubscribed(bob);
  await open(bob, "/e/customer?q=E2E");
  await bobSubscribed;
  const city = await columnIndex(bob, "City");
  await until(`bob's grid to show ${CUSTOMER} in Basel`, () => text(cityCell(bob, customerId, city)), (t) => t === "Basel");
  await bob.evaluate(() => (window.__e2eNoReload = true));

  // The admin edits the city in place.
  const admin = (current = pages.admin);
  const adminSubscribed = eventsSubscribed(admin);
  await open(admin, "/e/customer?q=E2E");
  await adminSubscribed;
  await cityCell(admin, customerId, city).dblclick();
  const editor = admin.locator(`#row-${customerId} form.inline input[name="city"]`);
  await editor.waitFor({ state: "visible" }).catch(() => fail("double-clicking the City cell did not open the inline editor (form.inline input[name=city])"));
  await editor.fill("Geneva");
  const pressed = Date.now();
  await editor.press("Enter");
  await until(
    "the admin's row to show Geneva (editor closed)",
    async () => ({ editing: await admin.locator(`#row-${customerId} form.inline`).count(), city: await text(cityCell(admin, customerId, city)) }),
    (s) => s.editing === 0 && s.city === "Geneva",
  );

  // Bob sees it without reloading, within LIVE_UPDATE_MS of the admin's row showing it.
  current = bob;
  await until(
    "bob's row to show Geneva (live update over /events)",
    () => text(cityCell(bob, customerId, city)),
    (t) => t === "Geneva",
    LIVE_UPDATE_MS,
  );
  const lag = Date.now() - pressed;
  assert(await bob.evaluate(() => window.__e2eNoReload === true), "bob's page was reloaded; the update should arrive in place");
  current = admin;
  return `bob saw Geneva ${lag} ms after the admin pressed Enter`;
}

// ------------------------------------------------------------------ the ledger

/** The bank reconciliation screen: the "a" key accepts the best suggestion. */
async function reconcileWithTheKeyboard() {
  const page = (current = pages.admin);
  await page.setViewportSize(DESKTOP);
  await open(page, "/ledger/bank");
  const account = page.locator("main a[href^='/ledger/bank/']").first();
  await until("a bank account in the list", () => account.count(), (n) => n === 1);
  await account.click();
  await expectPath(page, /^\/ledger\/bank\/\d+$/, "the reconciliation screen");
  const accept = page.locator("[data-shortcut=accept]");
  const before = await accept.count();
  assert(before > 0, "the demo statement has lines with a suggestion to accept");
  await page.locator("main h1").first().click();
  await Promise.all([page.waitForNavigation({ timeout: STEP_TIMEOUT_MS }), page.keyboard.press("a")]);
  await until("one suggestion fewer to accept", () => accept.count(), (n) => n === before - 1);
  await page.screenshot({ path: shot("reconciliation.png"), fullPage: true });
  // A statement file chosen in the browser fills the import form, and imports.
  const fixture = path.join(path.dirname(fileURLToPath(import.meta.url)), "../../modules/ledger/tests/fixtures/bank/english.csv");
  await page.setInputFiles("#st-pick", fixture);
  await until("the file's text in the form", () => page.locator("#st-file").inputValue(), (v) => v.startsWith("Date,"));
  await Promise.all([page.waitForNavigation({ timeout: STEP_TIMEOUT_MS }), page.locator("#st-file").evaluate((t) => t.form.requestSubmit())]);
  await expectPath(page, /^\/ledger\/bank\/\d+\?imported=/, "the screen after the import");
  await until(
    "the import's toast",
    () => page.locator("#toasts .toast").allTextContents(),
    (ts) => ts.some((t) => / lines imported/.test(t)),
  );
  return `${before} → ${before - 1} lines to accept after pressing a`;
}

/** Reports and an invoice as a bookkeeper opens them. */
async function readTheBooks() {
  const page = (current = pages.admin);
  await open(page, "/ledger/trial-balance");
  await expectHeading(page, "Trial balance");
  const drill = page.locator("main table a[href^='/ledger/accounts/']").first();
  await drill.click();
  await expectPath(page, /^\/ledger\/accounts\/\d+/, "an account's general ledger");
  await until("the opening balance row", () => text(page.locator("main table")), (t) => t.includes("Opening balance"));
  await open(page, "/ledger/invoices");
  await page.locator("main a[href^='/ledger/invoices/']").filter({ hasText: "INV-" }).first().click();
  await expectPath(page, /^\/ledger\/invoices\/\d+$/, "an invoice's page");
  await until("the invoice's PDF link", () => page.locator("a[href$='/pdf']").count(), (n) => n === 1);
  await page.screenshot({ path: shot("invoice.png"), fullPage: true });
}

async function exportAsAJob() {
  const page = (current = pages.admin);
  await open(page, "/e/customer?f.city=Zurich");
  await page.getByRole("button", { name: "Export CSV" }).click();
  await expectPath(page, /^\/jobs\/\d+$/, "the export job's page");
  await until("the finished export's download link", () => page.locator("a", { hasText: "Download CSV" }).count(), (n) => n === 1);
  await until("the job's state", () => text(page.locator("#job-status")), (t) => t.includes("done"));
  await page.screenshot({ path: shot("job.png"), fullPage: true });
}

async function secondCompany() {
  const page = (current = pages.admin);
  const first = await text(page.locator(".who .company").first());
  // A company is made from the form, confirmed with the administrator's password.
  await open(page, "/e/company/new");
  await page.fill("#f-name", "E2E Subsidiary GmbH");
  await page.selectOption('select[name="currency"]', "EUR");
  await page.fill("#f-current_password", ADMIN.password);
  await page.getByRole("button", { name: "Create company" }).click();
  await expectPath(page, /^\/e\/company\/\d+(\?.*)?$/, "the new company's page");
  await expectHeading(page, "E2E Subsidiary GmbH");
  // Its maker works in it at once; the top bar's switcher offers both companies.
  const switcher = page.locator("#company-switch");
  await until("the company switcher", () => switcher.count(), (n) => n === 1);
  await until("the new company chosen in the switcher", () => text(switcher.locator("option:checked")), (t) => t === "E2E Subsidiary GmbH");
  // The first company's customers are not here.
  await open(page, "/e/customer");
  await until("an empty customer grid in the new company", () => rows(page).count(), (n) => n === 0);
  // Choosing the first company in the switcher moves back, and its customers are there.
  await page.locator("#company-switch").selectOption({ label: first });
  await expectPath(page, /^\/$/, "the start page after switching");
  await open(page, "/e/customer");
  await until("the first company's customers again", () => rows(page).count(), (n) => n === 50);
  return `switched from ${first} to the new company and back`;
}

/** RFC 6238 TOTP (SHA-1, 6 digits, 30 s) for a base32 secret at Unix time `at`. */
function totp(secret, at) {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = 0;
  let value = 0;
  const key = [];
  for (const c of secret.replace(/=+$/, "")) {
    value = (value << 5) | alphabet.indexOf(c);
    bits += 5;
    if (bits >= 8) {
      key.push((value >>> (bits - 8)) & 255);
      bits -= 8;
    }
  }
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(at / 30)));
  const h = createHmac("sha1", Buffer.from(key)).update(counter).digest();
  const o = h[19] & 15;
  const n = ((h[o] & 127) << 24) | (h[o + 1] << 16) | (h[o + 2] << 8) | h[o + 3];
  return String(n % 1_000_000).padStart(6, "0");
}

async function secondFactorAndToken() {
  const page = (current = pages.bob);
  // Bob opens his security page from his name in the top bar and sets up the app.
  await open(page, "/");
  await page.locator(".who a.user").click();
  await expectPath(page, /^\/account\/security$/, "the security page");
  await page.fill("#mfa-password", BOB.password);
  await page.getByRole("button", { name: "Set up an authenticator app" }).click();
  await until("a QR code", () => page.locator("#mfa-enrolment img.qr").count(), (n) => n === 1);
  const secret = await text(page.locator("#mfa-secret"));
  assert(/^[A-Z2-7]{32}$/.test(secret), `a base32 secret, not "${secret}"`);
  await page.fill("#mfa-code", totp(secret, SERVER_NOW));
  await page.getByRole("button", { name: "Turn it on" }).click();
  await until("ten recovery codes", () => page.locator("#recovery-codes li").count(), (n) => n === 10);
  const recovery = await text(page.locator("#recovery-codes li").first());
  await until("the second factor on", () => text(page.locator("#second-factor")), (t) => t.includes("Recovery codes left: 10"));

  // A token for a script, read-only, shown once.
  await page.fill("#token-name", "nightly report");
  await page.fill("#token-scopes", "customer:r");
  await page.fill("#token-password", BOB.password);
  await page.getByRole("button", { name: "Make the token" }).click();
  const token = await until("the new token", () => text(page.locator("#token-secret")), (t) => /^nexus_tok_[0-9a-f]{64}$/.test(t));
  await open(page, "/account/security");
  assert(!(await page.content()).includes(token), "the token is shown once, not on the next visit");
  // The token alone (no cookie) reads customers and cannot touch sessions.
  const script = await request.newContext({ ignoreHTTPSErrors: true, extraHTTPHeaders: { Authorization: `Bearer ${token}` } });
  const read = await script.get(url("/api/v1/customer?limit=1"));
  assert(read.status() === 200, `the token should read customers, got ${read.status()}`);
  const sessions = await script.get(url("/api/v1/sessions"));
  assert(sessions.status() === 403, `a token cannot list sessions, got ${sessions.status()}`);

  // Signing in again asks for the code; a recovery code does (the clock stands still here).
  await page.getByRole("button", { name: "Sign out" }).click();
  await expectPath(page, /^\/login$/, "the sign-in page");
  await page.fill('input[name="username"]', BOB.username);
  await page.fill('input[name="password"]', BOB.password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await until("the code step", () => text(page.locator("h1").first()), (t) => t === "Your second factor");
  await page.fill("#code", recovery);
  await page.getByRole("button", { name: "Sign in" }).click();
  await expectPath(page, /^\/$/, "bob's start page after the second factor");
  await open(page, "/account/security");
  await until("one recovery code used", () => text(page.locator("#second-factor")), (t) => t.includes("Recovery codes left: 9"));

  // Revoked, the token stops at once.
  await page.locator("#api-tokens").getByRole("button", { name: "Revoke" }).click();
  await until("no tokens left", () => text(page.locator("#api-tokens")), (t) => t.includes("You have no tokens."));
  const after = await script.get(url("/api/v1/customer?limit=1"));
  assert(after.status() === 401, `a revoked token should be refused, got ${after.status()}`);
  await script.dispose();
  return "TOTP on, token made, used, revoked; signed in again with a recovery code";
}

async function screenshotsAndSignOut() {
  const page = (current = pages.admin);
  await page.setViewportSize(DESKTOP);
  await open(page, "/e/customer");
  await until("the customer grid", () => rows(page).count(), (n) => n === 50);
  await page.screenshot({ path: shot("customers.png"), fullPage: true });

  await open(page, `/e/customer/${customerId}`);
  await expectHeading(page, CUSTOMER);
  await page.screenshot({ path: shot("record.png"), fullPage: true });

  await page.setViewportSize(TABLET);
  await open(page, "/e/customer");
  await until("the customer grid at tablet width", () => rows(page).count(), (n) => n === 50);
  await page.screenshot({ path: shot("tablet.png"), fullPage: true });

  await page.getByRole("button", { name: "Sign out" }).click();
  await expectPath(page, /^\/login$/, "the sign-in page after signing out");
  await until("the sign-in heading", () => text(page.locator("h1").first()), (t) => t === "Sign in to NexusAI");
  await page.goto(url("/"));
  await expectPath(page, /^\/login(\?.*)?$/, "/ to send a signed-out browser to the sign-in page");

  assert(pageErrors.length === 0, `JavaScript errors on the pages: ${pageErrors.join("; ")}`);
}

// The top bar: Ctrl-K, type part of a word, arrows to the record, Enter opens it; the
// same box jumps to a page by its words.
async function searchFromTheTopBar() {
  const page = (current = pages.admin);
  await open(page, "/");
  const choose = async (typed, href, what) => {
    await page.evaluate(() => document.activeElement && document.activeElement.blur());
    await page.keyboard.press("Control+k");
    const focused = await page.evaluate(() => document.activeElement && document.activeElement.id === "global-search");
    assert(focused, "Ctrl-K should focus the top bar's search box");
    await page.keyboard.type(typed, { delay: 30 });
    await until(`suggestions for ${show(typed)}`, () => page.locator("#search-suggest.open .suggest-item").count(), (n) => n >= 2).catch(async (e) => {
      const box = await page.evaluate(() => { const all = document.querySelectorAll("#search-suggest"); return `${all.length} boxes; form: ${(document.querySelector("form.search") || {}).outerHTML}; ` + Array.prototype.map.call(all, (b) => `${b.className}: ${b.innerHTML.slice(0, 400)}`).join(" | "); });
      const value = await page.inputValue("#global-search").catch(() => "?");
      fail(`${e.message}; the box holds ${show(value)}, the suggestions are ${show(box)}`);
    });
    for (let i = 0; i < 12; i++) {
      await page.keyboard.press("ArrowDown");
      const chosen = await page.locator("#search-suggest .suggest-item.chosen").getAttribute("href");
      if (chosen === href) {
        await page.keyboard.press("Enter");
        return;
      }
    }
    const offered = await page.locator("#search-suggest .suggest-item").evaluateAll((as) => as.map((a) => a.getAttribute("href")));
    fail(`${what}: no suggestion links to ${href}; offered ${show(offered)}`);
  };
  // "bak" is a prefix of Bakery, as typed; the record is found within a second of its save.
  await choose("e2e bak", `/e/customer/${customerId}`, "the customer by a prefix");
  await expectPath(page, new RegExp(`^/e/customer/${customerId}$`), "the customer's page from the search box");
  await choose("trial bal", "/ledger/trial-balance", "a page by its words");
  await expectPath(page, /^\/ledger\/trial-balance$/, "the trial balance from the palette");
  await expectHeading(page, "Trial balance");
  return "prefix search and the palette, by keyboard";
}

// The search page finds by meaning what no word matches: a vet is a veterinary practice. (The
// vectors of the 300 demo customers are made as the box starts, beside the rest of the
// suite's load: wait until the vector indexer has caught up with the log, as /metrics
// tells an administrator, then the hit must be there.)
async function searchByMeaning() {
  const page = (current = pages.admin);
  const lag = async () => {
    const answer = await page.request.get(`${BASE}/metrics`);
    const body = await answer.text();
    const line = body.split("\n").find((l) => l.startsWith('nexus_tailer_lag{tailer="vectors"}'));
    return line === undefined ? `no vector indexer (HTTP ${answer.status()})` : Number(line.split(" ").pop());
  };
  await until("the vector indexer to catch up with the log", lag, (n) => n === 0, 300_000);
  const q = "a vet for my dog";
  const first = page.locator("ul.hits li").first();
  await until(`a hit for ${show(q)}`, async () => {
    await open(page, `/search?q=${encodeURIComponent(q)}`);
    return page.locator("ul.hits li").count();
  }, (n) => n >= 1, 30_000);
  const title = await first.locator("a").first().innerText();
  assert(/Veterinary/.test(title), `the best hit for ${show(q)} should be a veterinary practice, it is ${show(title)}`);
  const badge = await first.locator(".badge").innerText().catch(() => "");
  assert(badge === "similar meaning", `the hit ${show(title)} should say "similar meaning", it says ${show(badge)}`);
  await first.locator("a").first().click();
  await expectPath(page, /^\/e\/customer\/\d+$/, "the customer's page from a hit by meaning");
  return `"${q}" finds ${title}`;
}

// Documents: a file chosen in the record's drop zone and one dropped on it appear in its
// panel; the document's page lists its version, and its Download link gives the bytes.
async function attachDocuments() {
  const page = (current = pages.admin);
  await open(page, `/e/customer/${customerId}`);
  const pdf = "%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n";
  await page.setInputFiles("#documents .dropzone input[type=file]", {
    name: "E2E offer.pdf",
    mimeType: "application/pdf",
    buffer: Buffer.from(pdf),
  });
  await until("the chosen file in the record's documents", () => text(page.locator("#documents")), (t) => t.includes("E2E offer.pdf") && t.includes("Documents (1)"));
  const dropped = await page.evaluateHandle(() => {
    const d = new DataTransfer();
    d.items.add(new File(["call back on Monday"], "call notes.txt", { type: "text/plain" }));
    return d;
  });
  await page.dispatchEvent("#documents .dropzone", "drop", { dataTransfer: dropped });
  await until("the dropped file in the record's documents", () => text(page.locator("#documents")), (t) => t.includes("call notes.txt") && t.includes("Documents (2)"));
  // A PNG that calls itself a PDF is refused, with the reason, and nothing is added.
  await page.setInputFiles("#documents .dropzone input[type=file]", {
    name: "fake.pdf",
    mimeType: "application/pdf",
    buffer: Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13, 0x49, 0x48, 0x44, 0x52]),
  });
  await until("a toast saying why fake.pdf was refused", () => page.locator("#toasts .toast-error").allTextContents(), (ts) => ts.some((t) => t.includes("fake.pdf") && t.includes("PNG image")));
  assert((await text(page.locator("#documents"))).includes("Documents (2)"), "a refused file must not be listed");
  await page.locator("#documents a", { hasText: "E2E offer.pdf" }).click();
  await expectPath(page, /^\/documents\/\d+$/, "the document's page");
  await expectHeading(page, "E2E offer.pdf");
  await until("its version in the versions table", () => page.locator("table.doc-list tbody tr td").allTextContents(), (cells) => cells[0] === "1" && cells[1] === "E2E offer.pdf");
  const [download] = await Promise.all([page.waitForEvent("download"), page.locator(".actions a", { hasText: "Download" }).click()]);
  assert(download.suggestedFilename() === "E2E offer.pdf", `the download is named ${show(download.suggestedFilename())}`);
  const saved = await download.path();
  const got = (await import("node:fs")).readFileSync(saved, "latin1");
  assert(got === pdf, `the downloaded bytes differ: ${show(got.slice(0, 60))}`);
  await page.screenshot({ path: shot("document.png"), fullPage: true });
  return "chosen, dropped, refused with its reason, downloaded whole";
}

const STEPS = [
  ["0 start Chromium", startChromium],
  ["1 set up the administrator", setUpAdministrator],
  ["2 open CRM from the sidebar", openCustomersFromSidebar],
  ["3 sort, filter and page the grid", sortFilterAndPage],
  ["4 keyboard shortcuts / and n", keyboardShortcuts],
  ["5 create a customer (errors, then fixed)", createCustomerWithErrors],
  ["6 edit the record, history shows it", editOnRecordPage],
  ["6b find it from the top bar, jump to a page", searchFromTheTopBar],
  ["6c find a record by meaning on the search page", searchByMeaning],
  ["6d attach files to the record, download one", attachDocuments],
  ["7 create user bob (Sales)", createUser],
  ["8 live update from admin to bob", liveUpdateBetweenUsers],
  ["9 reconcile the bank with the a key", reconcileWithTheKeyboard],
  ["10 trial balance, general ledger, an invoice", readTheBooks],
  ["11 export the customers as a job", exportAsAJob],
  ["12 a second company, switched to and back", secondCompany],
  ["13 a second factor and an API token (bob)", secondFactorAndToken],
  ["14 screenshots and sign out", screenshotsAndSignOut],
];

// ------------------------------------------------------------------ runner

async function failureScreenshots() {
  const saved = [];
  const jobs = [];
  if (current && !current.isClosed()) {
    jobs.push(current.screenshot({ path: shot("failure.png"), fullPage: true, timeout: 5_000 }).then(() => saved.push(shot("failure.png"))));
  }
  for (const [name, page] of Object.entries(pages)) {
    if (page === current || page.isClosed()) continue;
    const file = shot(`failure-${name}.png`);
    jobs.push(page.screenshot({ path: file, fullPage: true, timeout: 5_000 }).then(() => saved.push(file)));
  }
  await Promise.allSettled(jobs);
  return saved;
}

let finished = false;

async function finish(code, message) {
  if (finished) return;
  finished = true;
  if (code !== 0) {
    console.error(message);
    if (pageErrors.length) console.error(`JavaScript errors seen: ${pageErrors.join("; ")}`);
    const saved = await failureScreenshots().catch(() => []);
    console.error(saved.length ? `screenshot: ${saved.join(", ")}` : "no screenshot could be taken");
  }
  await Promise.race([browser ? browser.close().catch(() => {}) : null, sleep(5_000)]);
  process.exit(code);
}

let running = "";

async function step(name, fn) {
  const started = Date.now();
  running = name;
  let note;
  try {
    note = await fn();
  } catch (e) {
    if (finished) return;
    const why = e instanceof StepFailure ? e.message : describe(e);
    const where = current && !current.isClosed() ? ` [page: ${current.url()}]` : "";
    console.log(`FAIL ${name} (${Date.now() - started} ms): ${why}${where}`);
    await finish(1, `e2e: step "${name}" failed`);
    return;
  }
  if (!finished) console.log(`ok   ${name} (${Date.now() - started} ms)${note ? `: ${note}` : ""}`);
}

async function main() {
  const overall = setTimeout(() => {
    console.log(`FAIL ${running} (overall timeout)`);
    finish(1, `e2e: timed out after ${OVERALL_TIMEOUT_MS / 1000} s during step "${running}"`);
  }, OVERALL_TIMEOUT_MS);
  console.log(`e2e: ${BASE} with ${CHROMIUM}, screenshots in ${OUT}`);
  for (const [name, fn] of STEPS) {
    if (finished) return;
    await step(name, fn);
  }
  clearTimeout(overall);
  console.log(`e2e: all ${STEPS.length} steps passed; screenshots: ${["customers.png", "record.png", "tablet.png"].map(shot).join(", ")}`);
  await finish(0);
}

main().catch((e) => finish(1, `e2e: ${describe(e)}`));
