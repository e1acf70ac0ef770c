// The dashboard's two static files, served by the dashboard itself (nothing from a CDN).
#ifndef TESSERA_DASHBOARD_INTERNAL_ASSETS_H_
#define TESSERA_DASHBOARD_INTERNAL_ASSETS_H_

namespace tessera::dashboard::internal {

// /dashboard.js: follows the page's event stream (main#live[data-stream]) and replaces the
// live fragment with each "update" event; shows "problem" events and the connection's state
// in #connection; closes the stream on "done" (the task ended). Records, for tests and
// for the curious, data-initial-points (points of the first curve when the page loaded)
// and data-updates (fragments applied) on main#live.
extern const char kScript[];
// /dashboard.css.
extern const char kStylesheet[];

}  // namespace tessera::dashboard::internal

#endif  // TESSERA_DASHBOARD_INTERNAL_ASSETS_H_
