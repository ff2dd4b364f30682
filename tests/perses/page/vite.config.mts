// Builds the page tests/e2e/test_dashboards_render.py opens (tests/support/perses_page.py runs it).
import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

export default defineConfig({
  root: import.meta.dirname,
  base: '/',
  plugins: [react()],
  // @perses-dev/core's fetch helper calls `global.fetch`: a browser has no `global`, and every query would fail.
  define: { global: 'globalThis' },
  logLevel: 'warn',
  build: {
    chunkSizeWarningLimit: 10000,
    reportCompressedSize: false,
    rolldownOptions: {
      // @module-federation/sdk (the plugin loader's, unused here: the plugins are bundled) uses direct eval for Node.
      onwarn(warning, warn) {
        if (warning.code !== 'EVAL') warn(warning);
      },
    },
  },
});
