// A minimal W3C WebDriver client over fetch, plus tauri-driver lifecycle helpers.
// Used by the real-app end-to-end tests: the built Tradeguard binary under Xvfb,
// driven through tauri-driver and WebKitWebDriver.
import { spawn, spawnSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

const ELEMENT = "element-6066-11e4-a52e-4f735466cecf";

export const APP_BIN = process.env.TRADEGUARD_APP_BIN;
export const ARTIFACTS = process.env.TRADEGUARD_ARTIFACTS ?? "artifacts";

/** Start tauri-driver on a free-ish port and wait until it answers. */
export async function startDriver(port = 4444) {
  const bin = process.env.TAURI_DRIVER ?? "tauri-driver";
  const native = process.env.WEBKIT_WEBDRIVER ?? "/usr/bin/WebKitWebDriver";
  const child = spawn(bin, ["--port", String(port), "--native-driver", native], {
    stdio: ["ignore", "inherit", "inherit"],
    env: {
      ...process.env,
      // Software rendering under Xvfb: no GPU, no DMA-BUF.
      WEBKIT_DISABLE_DMABUF_RENDERER: "1",
      LIBGL_ALWAYS_SOFTWARE: "1",
    },
  });
  const base = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 100; i++) {
    if (child.exitCode !== null) throw new Error(`tauri-driver exited with ${child.exitCode}`);
    try {
      const r = await fetch(`${base}/status`);
      if (r.ok) return { child, base };
    } catch {
      /* not listening yet */
    }
    await sleep(100);
  }
  child.kill("SIGTERM");
  throw new Error("tauri-driver did not start listening within 10 s");
}

/** Stop tauri-driver with SIGTERM (SIGKILL would orphan WebKitWebDriver and hang the run). */
export async function stopDriver(child) {
  if (child.exitCode !== null) return await appGone();
  const exited = new Promise((res) => child.once("exit", res));
  child.kill("SIGTERM");
  await Promise.race([exited, sleep(5000)]);
  await appGone();
}

/**
 * Waits (up to 20 s) until no Tradeguard app runs any more. The app is single-instance: a test
 * file whose app starts while the previous file's is still shutting down (its guard stopping,
 * its database flushed) only hands its launch to that one and exits, and its session never
 * gets a window. A zombie (an exited app nobody reaped yet: the container's first process may
 * not reap) holds nothing and is not waited for.
 */
async function appGone() {
  for (let i = 0; i < 200; i++) {
    const r = spawnSync("ps", ["-C", "tradeguard-app", "-o", "stat="], { encoding: "utf8" });
    const alive = (r.stdout ?? "").split("\n").some((l) => l.trim() !== "" && !l.trim().startsWith("Z"));
    if (!alive) return;
    await sleep(100);
  }
  console.warn("[e2e] a tradeguard-app is still running 20 s after its test file ended");
}

/** One WebDriver command; a command that hangs fails after `timeoutMs` with its name. */
async function call(base, method, path, body, timeoutMs = 60000) {
  let r;
  try {
    r = await fetch(`${base}${path}`, {
      method,
      headers: { "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (e) {
    throw new Error(`${method} ${path} got no answer within ${timeoutMs} ms: ${e}`);
  }
  const json = await r.json();
  if (!r.ok || (json.value && json.value.error)) {
    throw new Error(`${method} ${path} failed: ${JSON.stringify(json.value ?? json)}`);
  }
  return json.value;
}

export class Session {
  static async create(base, application) {
    const value = await call(base, "POST", "/session", {
      capabilities: {
        alwaysMatch: { browserName: "wry", "tauri:options": { application } },
      },
    });
    return new Session(base, value.sessionId);
  }

  constructor(base, id) {
    this.base = base;
    this.id = id;
  }

  cmd(method, path, body) {
    return call(this.base, method, `/session/${this.id}${path}`, body);
  }

  async find(css) {
    const el = await this.cmd("POST", "/element", { using: "css selector", value: css });
    return el[ELEMENT];
  }

  /** Every element matching `css` (possibly none). */
  async findAll(css) {
    // WebKitWebDriver can report a stale element while React re-renders: ask again.
    for (let attempt = 0; ; attempt++) {
      try {
        const els = await this.cmd("POST", "/elements", { using: "css selector", value: css });
        return els.map((e) => e[ELEMENT]);
      } catch (e) {
        if (attempt >= 20 || !String(e).includes("stale element")) throw e;
        await sleep(100);
      }
    }
  }

  /** Wait for an element matching `css`, up to `timeoutMs`. */
  async waitFor(css, timeoutMs = 15000) {
    const deadline = Date.now() + timeoutMs;
    let last;
    while (Date.now() < deadline) {
      try {
        return await this.find(css);
      } catch (e) {
        last = e;
        await sleep(100);
      }
    }
    throw new Error(`no element ${css} within ${timeoutMs} ms: ${last}`);
  }

  text(el) {
    return this.cmd("GET", `/element/${el}/text`);
  }

  /** Scrolls the element to the middle of the view (a sticky banner must not cover it), then clicks. */
  async click(el) {
    await this.cmd("POST", "/execute/sync", {
      script: "arguments[0].scrollIntoView({ block: 'center', inline: 'center' });",
      args: [{ [ELEMENT]: el }],
    });
    return this.cmd("POST", `/element/${el}/click`, {});
  }

  /** Replaces an input's value with `text`, as typed by a person. */
  async type(el, text) {
    await this.cmd("POST", `/element/${el}/clear`, {});
    return this.cmd("POST", `/element/${el}/value`, { text });
  }

  /** Poll `css`'s text until `pred(text)` holds; returns the text. */
  async waitForText(css, pred, timeoutMs = 15000) {
    const deadline = Date.now() + timeoutMs;
    let text = "";
    while (Date.now() < deadline) {
      try {
        text = await this.text(await this.find(css));
        if (pred(text)) return text;
      } catch {
        /* element may be re-rendering */
      }
      await sleep(100);
    }
    throw new Error(`text of ${css} never satisfied the condition; last: ${JSON.stringify(text)}`);
  }

  async screenshot(name) {
    // WebKit's snapshot waits for the page's next rendering update, and a static page (Settings,
    // say) may not have one: keep an invisible change ticking while the snapshot is taken.
    await sleep(300);
    await this.cmd("POST", "/execute/sync", {
      script: `const s = document.body.style; let n = 0;
        const t = setInterval(() => { s.opacity = s.opacity === '0.9999' ? '' : '0.9999'; if (++n >= 40) { clearInterval(t); s.opacity = ''; } }, 50);`,
      args: [],
    });
    const png = await this.cmd("GET", "/screenshot");
    const dir = join(ARTIFACTS, "e2e");
    mkdirSync(dir, { recursive: true });
    const file = join(dir, `${name}.png`);
    writeFileSync(file, Buffer.from(png, "base64"));
    return file;
  }

  close() {
    return call(this.base, "DELETE", `/session/${this.id}`);
  }
}
