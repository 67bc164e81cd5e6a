// Browser end-to-end check of the gateway's chat page (GET /), run by hand or
// by CI later; it is not part of `make test`. A plain Node script, no test framework.
//
//   cd adapters/web/e2e && npm ci
//   KCHAT_GATEWAY_URL=<gateway base URL, e.g. the one `make run` prints> node chat.spec.mjs
//
// Environment: KCHAT_GATEWAY_URL (required), KCHAT_SCREENSHOT (default e2e-chat.png),
// KCHAT_CHROMIUM (default /usr/bin/chromium, e.g. Debian's chromium package),
// KCHAT_E2E_TIMEOUT_MS (default 60000, per wait). Exits 0 on success, 1 on failure,
// 2 on a usage error. It never downloads a browser.
import { chromium } from "playwright-core";

const gatewayURL = process.env.KCHAT_GATEWAY_URL;
const screenshot = process.env.KCHAT_SCREENSHOT || "e2e-chat.png";
const executablePath = process.env.KCHAT_CHROMIUM || "/usr/bin/chromium";
const timeout = Number(process.env.KCHAT_E2E_TIMEOUT_MS || 60000);
const question = "How do I start kchat?";

class CheckFailed extends Error {}

function check(ok, message) {
  if (!ok) throw new CheckFailed(message);
}

async function run() {
  if (!gatewayURL) {
    console.error("e2e chat: set KCHAT_GATEWAY_URL to the gateway's base URL");
    process.exit(2);
  }
  const origin = new URL(gatewayURL).origin;
  const browser = await chromium.launch({
    executablePath,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"],
  });
  const problems = [];
  // watch reports what a page does wrong: uncaught errors, CSP violations,
  // requests to other origins.
  const watch = (page) => {
    page.setDefaultTimeout(timeout);
    page.on("pageerror", (err) => problems.push(`uncaught error in the page: ${err.message}`));
    page.on("console", (msg) => {
      if (msg.type() === "error" && /Content Security Policy/i.test(msg.text())) {
        problems.push(`CSP violation: ${msg.text()}`);
      }
    });
    page.on("request", (req) => {
      const url = req.url();
      if (!url.startsWith("data:") && new URL(url).origin !== origin) {
        problems.push(`request to another origin: ${url}`);
      }
    });
    return page;
  };
  const context = await browser.newContext();
  const page = watch(await context.newPage());

  try {
    step("open the page: the visitor gets an identity cookie scripts cannot read");
    const response = await page.goto(gatewayURL, { waitUntil: "load" });
    const csp = (await response.allHeaders())["content-security-policy"] || "";
    check(csp.includes("frame-ancestors 'none'"), `the page's Content-Security-Policy allows framing: ${csp}`);
    await page.waitForSelector('#status[data-state="connected"]');
    const visitor = (await context.cookies()).find((c) => c.name === "kchat_visitor");
    check(visitor && visitor.httpOnly && visitor.sameSite === "Lax", `visitor cookie ${JSON.stringify(visitor)}: want HttpOnly, SameSite=Lax`);
    check(!(await page.evaluate(() => document.cookie)).includes("kchat_visitor"), "the page's script can read the visitor cookie");

    step(`ask "${question}"`);
    await page.fill("#question", question);
    await page.press("#question", "Enter");
    await page.waitForSelector('.question .state[data-state="sent"]');
    await page.waitForSelector(".answer .citations li");
    const answer = ((await page.textContent(".answer .answer-text")) || "").trim();
    check(answer !== "", "the answer text is empty");
    const citations = await page.locator(".answer .citations li").count();
    check(citations >= 1, "the answer lists no citation");
    const errors = await page.locator(".error").allTextContents();
    check(errors.length === 0, `the page shows errors: ${errors.join(" | ")}`);
    console.log(`answer (${citations} citation(s)): ${answer.slice(0, 120)}`);

    step("reload: the conversation comes back from history");
    await page.reload({ waitUntil: "load" });
    await page.waitForSelector(".answer .citations li");
    const questions = (await page.locator(".question-text").allTextContents()).map((s) => s.trim());
    check(questions.includes(question), `after reload the question is not shown (questions: ${JSON.stringify(questions)})`);
    const answers = (await page.locator(".answer .answer-text").allTextContents()).map((s) => s.trim());
    check(answers.includes(answer), `after reload the answer is not shown (answers: ${JSON.stringify(answers)})`);

    step("another visitor with the first one's session id sees nothing of it, and gets a conversation of its own");
    const session = await page.evaluate(() => localStorage.getItem("kchat.session_id"));
    check(session, "no session id in localStorage");
    const other = await browser.newContext();
    await other.addInitScript((id) => {
      if (!sessionStorage.getItem("seeded")) {
        localStorage.setItem("kchat.session_id", id);
        sessionStorage.setItem("seeded", "1");
      }
    }, session);
    const intruder = watch(await other.newPage());
    await intruder.goto(gatewayURL, { waitUntil: "load" });
    await intruder.waitForSelector('#status[data-state="connected"]');
    const stolen = await intruder.locator(".question-text").allTextContents();
    check(stolen.length === 0, `another visitor sees the conversation: ${JSON.stringify(stolen)}`);
    const own = await intruder.evaluate(() => localStorage.getItem("kchat.session_id"));
    check(own && own !== session, `another visitor kept the session id ${own}`);
    await other.close();

    check(problems.length === 0, problems.join("\n"));
    await page.screenshot({ path: screenshot, fullPage: true });
    console.log(`e2e chat: ok (screenshot ${screenshot})`);
  } catch (err) {
    await page.screenshot({ path: screenshot, fullPage: true }).catch(() => {});
    if (problems.length > 0 && !(err instanceof CheckFailed && err.message === problems.join("\n"))) {
      err.message += `\nalso seen in the browser:\n${problems.join("\n")}`;
    }
    err.message += `\n(screenshot ${screenshot})`;
    throw err;
  } finally {
    await browser.close();
  }
}

function step(what) {
  console.log(`- ${what}`);
}

run().catch((err) => {
  const detail = err instanceof CheckFailed ? err.message : err.stack || String(err);
  console.error(`e2e chat FAILED: ${detail}`);
  process.exit(1);
});
