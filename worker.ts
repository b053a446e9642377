// The one Worker: mounts every part's routes and exports every Durable Object class.
import { CollectorShard } from './collector';

export { CollectorShard };

export default {
  async fetch(): Promise<Response> {
    return new Response('keywarden', { status: 200 });
  },
} satisfies ExportedHandler<Env>;
