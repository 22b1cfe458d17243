import { defineConfig } from "vitest/config";
import react from "@vitejs/plugin-react";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import type { Plugin } from "vite";

const require = createRequire(import.meta.url);
const UPLOT_SCRIPT = "uPlot.iife.min.js";

/**
 * Ships uPlot's own prebuilt IIFE (it defines `window.uPlot`) next to index.html, loaded as a
 * plain script after public/locale-fix.js: uPlot formats numbers with `navigator.language` as it
 * loads, which throws under LANG=C in WebKitGTK; a failed module would take the whole UI with it,
 * a failed script only the charts (which then say so).
 */
function uplotScript(): Plugin {
  const source = () => readFileSync(require.resolve(`uplot/dist/${UPLOT_SCRIPT}`));
  return {
    name: "tradeguard-uplot-script",
    configureServer(server) {
      server.middlewares.use(`/${UPLOT_SCRIPT}`, (_req, res) => {
        res.setHeader("Content-Type", "text/javascript");
        res.end(source());
      });
    },
    generateBundle() {
      this.emitFile({ type: "asset", fileName: UPLOT_SCRIPT, source: source() });
    },
  };
}

// The desktop shell serves `dist/` (see ../tauri.conf.json `build.frontendDist`).
export default defineConfig({
  plugins: [react(), uplotScript()],
  clearScreen: false,
  build: { outDir: "dist", target: "es2022", sourcemap: false },
  test: { environment: "jsdom", globals: true },
});
