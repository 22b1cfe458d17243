import { defineConfig } from "vitest/config";
import react from "@vitejs/plugin-react";

// The desktop shell serves `dist/` (see ../tauri.conf.json `build.frontendDist`).
export default defineConfig({
  plugins: [react()],
  clearScreen: false,
  build: { outDir: "dist", target: "es2022", sourcemap: false },
  test: { environment: "jsdom", globals: true },
});
