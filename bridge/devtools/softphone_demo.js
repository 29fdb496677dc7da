// `bridge demo --softphone`: what the simulated device does on top of the fakes (fake_phone.js). Calls in
// are the Twilio stand-in's: the bridge's routing rings this agent's identity or queues the caller, and
// this page learns of its legs by asking the demo (/demo/device); answering, declining and hanging up
// are done to the stand-in's leg. Calls out are replays of a recorded call, as Twilio would send it.
(function () {
  'use strict';
  var fake = window.__fake;
  var agent = new URLSearchParams(window.location.search).get('agent') || 'alice';
  var legs = {};  // the stand-in's leg sid -> {call, accepted}: this device's calls in
  var done = {};  // legs this page ended: the stand-in may still say they ring for a moment

  function post(path, body) {
    return fetch(path, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) })
      .then(function (r) { return r.json(); });
  }

  function note(result) {
    if (result && result.text) { document.getElementById('demo-note').textContent = result.text; }
    return result;
  }

  function leg(call, action) {
    var sid = call.parameters.CallSid;
    if (!legs[sid]) { return null; }
    if (action === 'answer') { legs[sid].accepted = true; } else { delete legs[sid]; done[sid] = true; }
    return post('/demo/leg', { sid: sid, action: action }).then(note);
  }

  fake.onAccept = function (call) { leg(call, 'answer'); };
  fake.onReject = function (call) { leg(call, 'reject'); };
  fake.onDisconnect = function (call) { leg(call, 'hangup'); };
  fake.onConnect = function (params, call) {
    if (params.Room) {  // back into a call's room (Resume): the stand-in places the call, the bridge lets it in
      post('/demo/call', { kind: 'room', agent: agent, room: params.Room }).then(note).then(function (result) {
        if (!result || !result.call_sid) { return; }
        call.parameters.CallSid = result.call_sid;
        legs[result.call_sid] = { call: call, accepted: true };
        call.emit('accept', call);
      });
      return;
    }
    post('/demo/call', { kind: 'outbound', agent: agent, to: params.To, ticket: params.TicketId || null }).then(note)
      .then(function () { fake.answerRemote(); });
  };

  // The device's view of the stand-in: a leg ringing it rings the page; a leg that ended ends its call.
  function look() {
    fetch('/demo/device?agent=' + encodeURIComponent(agent)).then(function (r) { return r.json(); })
      .then(function (device) {
        device.ringing.forEach(function (ring) {
          if (legs[ring.sid] || done[ring.sid]) { return; }
          // Known before it rings: the page may decline it at once (it is on another call).
          var entry = legs[ring.sid] = { call: null, accepted: false };
          entry.call = fake.ring(ring.from, ring.sid);
        });
        Object.keys(legs).forEach(function (sid) {
          if (device.live.indexOf(sid) >= 0) { return; }
          var mine = legs[sid];
          delete legs[sid];
          mine.call.emit(mine.accepted ? 'disconnect' : 'cancel', mine.call);
        });
        document.getElementById('demo-queue').textContent = device.queue;
      })
      .catch(function () { /* the demo stopped: nothing to show */ });
  }

  function ring(first) { post('/demo/call', { kind: 'inbound', first: first }).then(note); }

  document.addEventListener('DOMContentLoaded', function () {
    var box = document.createElement('aside');
    box.setAttribute('aria-label', 'Demo controls');
    box.className = 'panel';
    box.innerHTML = '<h2>Demo</h2><p id="demo-note" role="status"></p><p id="demo-queue"></p>' +
      '<button type="button" id="demo-ring">Simulate an incoming call</button> ' +
      '<button type="button" id="demo-dialout">Click-to-call from ticket #1</button>';
    document.querySelector('main').appendChild(box);
    document.getElementById('demo-ring').addEventListener('click', function () { ring(false); });
    document.getElementById('demo-dialout').addEventListener('click', function () {
      fake.zaf.fire('softphone.dial', { number: '+14155550199', ticketId: 1, userId: 2002 });
    });
    setInterval(look, 500);
    var wait = setInterval(function () {
      if (document.body.dataset.state === 'ready') { clearInterval(wait); ring(true); }
    }, 250);
  });
})();
