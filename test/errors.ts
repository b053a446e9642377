// Test helpers for calls expected to fail.

/** The message a call rejected with (an RPC promise handed to `expect().rejects` is reported unhandled). */
export async function thrown(f: () => Promise<unknown>): Promise<string> {
  try {
    await f();
  } catch (err) {
    return String(err);
  }
  return 'did not throw';
}
