import { defineConfig } from "vite";

// The API serves the build at /portal; every asset is a file of ours (no CDN, no inline script).
export default defineConfig({
  base: "/portal/",
  build: {
    outDir: "dist",
    emptyOutDir: true,
    assetsInlineLimit: 0, // images as files too, so the CSP needs no data: for them
    sourcemap: false,
    chunkSizeWarningLimit: 800,
  },
  server: {
    // `npm run dev` against an API on 127.0.0.1:8000
    proxy: { "/v1": "http://127.0.0.1:8000" },
  },
});
