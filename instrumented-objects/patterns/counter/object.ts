// The counter pattern object (DESIGN §4). Placeholder until its issue lands.
import { InstrumentedObject } from '../../kit';

export class CounterObject extends InstrumentedObject {}
