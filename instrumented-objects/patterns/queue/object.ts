// The queue pattern object (DESIGN §4). Placeholder until its issue lands.
import { InstrumentedObject } from '../../kit';

export class QueueObject extends InstrumentedObject {}
