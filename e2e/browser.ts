// Headless Debian Chromium for the dashboard tests (never a downloaded browser build).
import { type Browser, chromium } from 'playwright-core';

export const CHROMIUM = process.env.KEYWARDEN_CHROMIUM ?? '/usr/bin/chromium';

export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
  });
}
