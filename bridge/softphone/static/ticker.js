// The softphone's check-in clock, in a worker: browsers throttle a hidden tab's own timers to about once a
// minute after five minutes (Chrome: "intensive throttling" of chained timers), which would let the agent's
// presence run out while Zendesk sits in a background tab. A dedicated worker's timers are not throttled so.
// The page posts the period in milliseconds; the worker posts 'tick' at that period.
var timer = null;
self.onmessage = function (event) {
  var period = Number(event.data);
  clearInterval(timer);
  if (period > 0) { timer = setInterval(function () { self.postMessage('tick'); }, period); }
};
