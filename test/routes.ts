// The pattern routes as a test calls them: the Worker, the API token, JSON bodies.
import { SELF } from 'cloudflare:test';

export const API_AUTH = { authorization: 'Bearer test-api-token' } as const;

export function patternRoutes(pattern: string) {
  const url = (path: string) => `http://keywarden.test/objects/${pattern}/${path}`;
  const post = (path: string, body: unknown) =>
    SELF.fetch(url(path), {
      method: 'POST',
      headers: { ...API_AUTH, 'content-type': 'application/json' },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });
  return { url, post };
}
