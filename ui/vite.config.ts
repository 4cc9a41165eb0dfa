import { defineConfig } from "vite";

// Served by fleetlog at /ui; the output is committed into the Python package so that
// installing fleetlog needs no Node.js (docs/ui.md).
export default defineConfig({
  base: "/ui/",
  build: {
    outDir: "../src/fleetlog/web/static",
    emptyOutDir: true,
    sourcemap: false,
    reportCompressedSize: false,
  },
});
