// The demo's face: routes the Worker mounts at / (they carry their full /demo/... paths).
export { CHARGES_NS, MAX_AMOUNT, PAY_NS, type PayResponse, payDemoRoutes, TOTAL_NS } from './pay';
