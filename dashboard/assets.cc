#include "dashboard/internal/assets.h"

namespace tessera::dashboard::internal {

const char kScript[] = R"JS(// Tessera dashboard: live updates by server-sent events.
(function () {
  'use strict';
  var live = document.getElementById('live');
  var status = document.getElementById('connection');
  if (!live) return;
  function show(text, kind) {
    if (!status) return;
    status.textContent = text;
    status.className = kind;
  }
  function points() {
    var curve = live.querySelector('path.curve');
    return curve ? curve.getAttribute('data-points') : '0';
  }
  live.setAttribute('data-initial-points', points());
  var stream = live.getAttribute('data-stream');
  if (!stream) return;
  if (!window.EventSource) {
    show('no live updates in this browser: reload to refresh', 'warn');
    return;
  }
  var updates = 0;
  var source = new EventSource(stream);
  source.addEventListener('open', function () { show('live', 'ok'); });
  source.addEventListener('update', function (e) {
    live.innerHTML = e.data;
    updates += 1;
    live.setAttribute('data-updates', String(updates));
    show('live', 'ok');
  });
  source.addEventListener('problem', function (e) { show(e.data, 'warn'); });
  source.addEventListener('done', function () {
    source.close();
    show('task ended: no more updates', 'muted');
  });
  source.addEventListener('error', function () {
    if (source.readyState !== EventSource.CLOSED) show('reconnecting…', 'warn');
  });
})();
)JS";

const char kStylesheet[] =
    R"CSS(/* Tessera dashboard. System fonts only: nothing is loaded from elsewhere. */
body { font: 14px/1.45 system-ui, sans-serif; margin: 0; color: #1d2430; background: #f6f7f9; }
header { display: flex; justify-content: space-between; align-items: center;
  padding: 10px 24px; background: #1d2430; color: #fff; }
header a.home { color: #fff; font-weight: 600; text-decoration: none; }
#connection.ok { color: #7ee0a0; } #connection.warn { color: #ffb870; }
main { padding: 8px 24px 32px; max-width: 1200px; }
h2 { font-size: 17px; margin: 20px 0 8px; }
table { border-collapse: collapse; background: #fff; margin-bottom: 8px; }
th, td { text-align: left; padding: 4px 10px; border-bottom: 1px solid #e3e6eb; vertical-align: top; }
th { font-weight: 600; background: #eef0f3; }
.muted { color: #6b7480; }
.state { padding: 1px 8px; border-radius: 9px; font-size: 12px; font-weight: 600; background: #e3e6eb; }
.state-running { background: #d9ecff; color: #0b4f8a; }
.state-completed { background: #dcf5e3; color: #17663a; }
.state-failed { background: #fde0de; color: #9b1c13; }
.state-cancelled { background: #f3e6c8; color: #6d4b00; }
.reason { color: #9b1c13; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 4px 16px; margin: 0; }
dt { color: #6b7480; } dd { margin: 0; }
progress { width: 160px; vertical-align: middle; }
.curves { display: flex; flex-wrap: wrap; gap: 12px; }
.curves h2 { width: 100%; }
figure.curve { margin: 0; background: #fff; border: 1px solid #e3e6eb; width: 560px; max-width: 100%; }
figure.curve svg { display: block; width: 100%; height: auto; color: #0b63b5; }
figure.curve .axis { color: #9aa3ad; }
figure.curve text { font-size: 12px; fill: #4a5260; }
figure.curve text.title { font-weight: 600; font-size: 13px; fill: #1d2430; }
figure.curve circle.point { fill: #0b63b5; }
td.took-part { color: #17663a; } td.absent { color: #9b1c13; }
tr.decision-declined td { color: #9b1c13; }
.banner { padding: 6px 12px; border-radius: 4px; font-weight: 600; }
.banner.failure { background: #fde0de; color: #9b1c13; }
dd.waiting { color: #6d4b00; font-weight: 600; }
.answer { display: block; font-size: 12px; }
.answer-contributed { color: #17663a; }
.answer-declined, .answer-dropped, .answer-no_answer, .answer-not_connected { color: #9b1c13; }
.answer-no_sum { color: #6d4b00; } .answer-pending { color: #0b4f8a; }
table.attempts td.outcome { color: #4a5260; }
.client-status { padding: 1px 8px; border-radius: 9px; font-size: 12px; font-weight: 600; }
.status-active { background: #dcf5e3; color: #17663a; }
.status-stale { background: #f3e6c8; color: #6d4b00; }
.status-offline { background: #fde0de; color: #9b1c13; }
.status-held { background: #e8e0f5; color: #4b2a85; }
.problem { background: #fde0de; padding: 4px 16px; border-radius: 4px; }
)CSS";

}  // namespace tessera::dashboard::internal
