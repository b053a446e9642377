// The dashboard's face (DESIGN §1): static pages under dashboard/public, served by the Worker's
// assets binding. It talks to the Worker over HTTP only.
export const DASHBOARD_ASSETS_DIR = 'dashboard/public';
