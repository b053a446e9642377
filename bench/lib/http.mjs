// A lean keep-alive HTTP client for load generation. Node's fetch (undici) costs noticeably more
// CPU per request than node:http, and the generator shares the cores with the server it measures.
import { Agent, request } from 'node:http';

/**
 * @param {string} baseUrl e.g. http://127.0.0.1:8787
 * @param {{ sockets?: number, timeoutMs?: number }} opts sockets: connections kept open (one per request
 *   in flight); timeoutMs: a request's limit
 */
export function httpClient(baseUrl, opts = {}) {
  const base = new URL(baseUrl);
  const agent = new Agent({ keepAlive: true, maxSockets: opts.sockets ?? 4 });
  /**
   * Sends one request; resolves with status, body text and wall-clock ms (send → last byte).
   * @param {string} method
   * @param {string} path
   * @param {string | Buffer | null} body
   * @param {Record<string, string>} headers
   * @returns {Promise<{ status: number, text: string, ms: number }>}
   */
  function send(method, path, body = null, headers = {}) {
    return new Promise((ok, fail) => {
      const t0 = process.hrtime.bigint();
      const req = request(
        {
          host: base.hostname,
          port: base.port,
          method,
          path,
          agent,
          headers: body === null ? headers : { ...headers, 'content-length': Buffer.byteLength(body) },
        },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (d) => {
            text += d;
          });
          res.on('end', () =>
            ok({ status: res.statusCode ?? 0, text, ms: Number(process.hrtime.bigint() - t0) / 1e6 }),
          );
          res.on('error', fail);
        },
      );
      // A request that never completes would stall its lane (and the run) silently.
      req.setTimeout(opts.timeoutMs ?? 30_000, () =>
        req.destroy(new Error(`no answer in ${opts.timeoutMs ?? 30_000} ms`)),
      );
      req.on('error', fail);
      req.end(body ?? undefined);
    });
  }
  return {
    send,
    getJson: async (path, headers = {}) => {
      const r = await send('GET', path, null, headers);
      if (r.status !== 200) throw new Error(`GET ${path} → ${r.status}: ${r.text.slice(0, 300)}`);
      return JSON.parse(r.text);
    },
    close: () => agent.destroy(),
  };
}
