// Renders webui/static/icon.svg to the PNG icons with the system Chromium.
// Run after changing the SVG: node webui/tests/make-icons.mjs
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const staticDir = fileURLToPath(new URL('../static/', import.meta.url));
const svg = await readFile(staticDir + 'icon.svg', 'utf8');
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu'],
});
try {
  for (const size of [192, 512]) {
    const page = await browser.newPage({ viewport: { width: size, height: size } });
    await page.setContent(`<body style="margin:0"><img width="${size}" height="${size}"
      src="data:image/svg+xml;base64,${Buffer.from(svg).toString('base64')}"></body>`);
    await page.screenshot({ path: `${staticDir}icon-${size}.png`, omitBackground: true });
    await page.close();
  }
} finally {
  await browser.close();
}
