import { defineConfig } from 'vitest/config';
import { svelte } from '@sveltejs/vite-plugin-svelte';

// The build goes to dist/app, which the Go binary embeds (web/ui.go);
// dist/ itself holds a committed README so that the embed pattern always
// matches on a clean clone.
export default defineConfig({
  plugins: [svelte()],
  build: {
    outDir: 'dist/app',
    emptyOutDir: true,
    manifest: true,
    // Browsers with Ed25519 in WebCrypto, which the timeline needs anyway.
    target: 'es2022',
    // Inline assets would be data: URLs; the CSP allows them for images
    // only, so keep every asset a file.
    assetsInlineLimit: 0,
  },
  server: {
    // `npm run dev` against a running `integr8scode up`.
    proxy: { '/api': 'http://127.0.0.1:8080' },
  },
  test: {
    environment: 'jsdom',
    include: ['tests/**/*.test.ts'],
  },
  resolve: process.env.VITEST ? { conditions: ['browser'] } : undefined,
});
