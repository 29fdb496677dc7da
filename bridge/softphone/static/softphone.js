// The softphone in Zendesk's top bar: a Twilio Voice SDK Device for the agent the bridge verified.
// @twilio/voice-sdk 2.x (Twilio docs, "Voice JavaScript SDK: Twilio.Device" and "Twilio.Call"): register(),
// 'incoming', accept(), reject(), disconnect(), mute(), sendDigits(), 'tokenWillExpire' + updateToken().
// ZAF (Zendesk docs, "ZAF Client API"): invoke('popover', 'show'), on(event), request().
// Identity never comes from here: the bridge took it from Zendesk's signed request, and every call to
// the bridge carries the session it issued.
// The agent's status (docs/softphone.md, "Your status") is the bridge's: the page shows it, changes it,
// checks in every 15 seconds (the sign of life routing needs) and says goodbye when it closes.
(function () {
  'use strict';

  var config = JSON.parse(document.getElementById('softphone-config').textContent);
  var session = config.session;
  var zaf = window.ZAFClient ? window.ZAFClient.init() : null;
  var device = null;
  var call = null;
  var timer = null;
  var answeredAt = 0;
  var registered = false;

  function $(id) { return document.getElementById(id); }

  var LABELS = { offline: 'Offline', ready: 'Ready', ringing: 'Ringing', calling: 'Calling…', 'in-call': 'In call' };

  function setState(name) {
    var el = $('state');
    el.textContent = LABELS[name];
    el.className = 'state state-' + name;
    document.body.dataset.state = name;
  }

  function showError(text) {
    var el = $('error');
    el.textContent = text || '';
    el.hidden = !text;
    if (text) { document.body.dataset.error = 'yes'; } else { delete document.body.dataset.error; }
  }

  // Twilio docs, "Voice JavaScript SDK error codes": say what happened in words the agent can act on.
  function describe(error) {
    var code = error && error.code;
    if (code === 31208 || code === 31401 || (error && error.name === 'NotAllowedError')) {
      return 'Microphone access was refused. Allow the microphone for this page in your browser, then try again.';
    }
    if (code === 20104 || code === 20101 || code === 31204 || code === 31205) {
      return 'Your phone token has expired or is invalid. Reload Zendesk to sign in again.';
    }
    if (code === 31005 || code === 31009 || code === 53000 || code === 53001 || code === 31003) {
      return 'The connection to Twilio was lost. Check your network; the phone reconnects by itself.';
    }
    if (error instanceof TypeError) {
      return 'The bridge cannot be reached. Check your network connection.';
    }
    return (error && (error.explanation || error.message)) || 'Something went wrong with the phone.';
  }

  function fetchToken() {
    return fetch('/softphone/token', { method: 'POST', headers: { Authorization: 'Bearer ' + session } })
      .then(function (response) {
        if (response.status === 401) {
          throw new Error('Your phone session has expired. Reload Zendesk to sign in again.');
        }
        if (!response.ok) { throw new Error('The bridge refused a phone token (HTTP ' + response.status + ').'); }
        return response.json();
      })
      .then(function (body) { session = body.session; return body.token; });
  }

  function fail(error) {
    setState('offline');
    showError(describe(error));
  }

  function show(panel) {
    $('incoming').hidden = panel !== 'incoming';
    $('call').hidden = panel !== 'call';
    $('dial').hidden = panel !== 'dial';
  }

  function idle() {
    clearInterval(timer);
    timer = null;
    call = null;
    stopControls();
    $('mute').setAttribute('aria-pressed', 'false');
    $('mute').textContent = 'Mute';
    show('dial');
    setState(registered && navigator.onLine ? 'ready' : 'offline');
    checkInSoon();
  }

  function tick() {
    var seconds = Math.floor((Date.now() - answeredAt) / 1000);
    var minutes = Math.floor(seconds / 60);
    $('duration').textContent = minutes + ':' + String(seconds % 60).padStart(2, '0');
  }

  function inCall() {
    if (!roomCall) {  // back into the room after a hold: the same call, whose duration goes on
      answeredAt = Date.now();
      $('duration').textContent = '0:00';
    }
    roomCall = null;
    clearInterval(timer);
    timer = setInterval(tick, 1000);
    $('call-title').textContent = 'In call';
    setState('in-call');
    show('call');
    $('hangup').focus();
    checkInSoon();
    startControls();
  }

  // The bridge says which Zendesk user it found for the number; Zendesk itself (as the agent) gives the name.
  function lookUpCaller(number, target) {
    target.textContent = '';
    fetch('/softphone/caller', {
      method: 'POST',
      headers: { Authorization: 'Bearer ' + session, 'Content-Type': 'application/json' },
      body: JSON.stringify({ number: number })
    })
      .then(function (response) { return response.ok ? response.json() : {}; })
      .then(function (body) {
        if (!body.user_id || !zaf) { return null; }
        return zaf.request({ url: '/api/v2/users/' + body.user_id + '.json', type: 'GET' });
      })
      .then(function (data) { if (data && data.user && data.user.name) { target.textContent = data.user.name; } })
      .catch(function () { /* the name is a nicety: the number is already shown */ });
  }

  function follow(theCall) {
    call = theCall;
    theCall.on('accept', inCall);
    theCall.on('disconnect', function () { ended(theCall); });
    theCall.on('cancel', idle);
    theCall.on('reject', idle);
    theCall.on('error', function (error) { showError(describe(error)); });
  }

  function onIncoming(incoming) {
    if (call) { incoming.reject(); return; }  // one call at a time: the bridge rings the other agents too
    follow(incoming);
    var from = (incoming.parameters && incoming.parameters.From) || 'Unknown number';
    $('incoming-number').textContent = from;
    $('call-peer').textContent = from;
    lookUpCaller(from, $('incoming-name'));
    lookUpCaller(from, $('call-name'));
    $('call-ticket').textContent = '';
    setState('ringing');
    show('incoming');
    if (zaf) { zaf.invoke('popover', 'show'); }
    $('answer').focus();
  }

  function dial(number, ticketId) {
    number = String(number || '').trim();
    if (!number) { return; }
    if (!device || !registered) { showError('The phone is offline: it cannot call yet.'); return; }
    if (call) { showError('Hang up the current call first.'); return; }
    showError('');
    var params = { To: number };
    var ticket = String(ticketId || '').trim();
    // Twilio forwards custom params to the TwiML App's Voice URL: the bridge logs the call on this ticket.
    if (/^[0-9]+$/.test(ticket)) { params.TicketId = ticket; }
    // An agent on several lines calls from the one chosen: its number shows, its group and brand get the call.
    if (config.lines && config.lines.length > 1) { params.CallFrom = $('call-from').value; }
    $('call-peer').textContent = number;
    $('call-name').textContent = '';
    $('call-ticket').textContent = params.TicketId ? 'Logged on ticket #' + params.TicketId : '';
    $('call-title').textContent = 'Calling';
    $('duration').textContent = '0:00';
    setState('calling');
    show('call');
    device.connect({ params: params }).then(function (outgoing) {
      follow(outgoing);
      lookUpCaller(number, $('call-name'));
    }, function (error) { idle(); showError(describe(error)); });
  }

  // --- The controls of the call (docs/softphone.md, "During a call") -------------------------------------
  // The bridge decides what each control can do now (GET /softphone/call, `can`: null or why not) and carries
  // a click out once (its `request` id); the page shows only what the bridge's answer says, so the recording
  // shows as paused only once Twilio confirmed it. A control is one entry here: its action, its button's
  // label, and when it shows (Pause and Resume share a place: one shows at a time).
  // Hold, transfers and a third party (docs/calls-in-progress.md): `target` controls are for the colleague or
  // number chosen in "Transfer to"; `join` ones bring the agent back into the call's room first when they are out
  // of it (on hold after the call moved there), then go on.
  var CONTROLS = [
    { action: 'hold', label: 'Hold', shows: function (state) { return !state.on_hold; } },
    { action: 'resume', label: 'Resume', shows: function (state) { return state.on_hold; } },
    { action: 'transfer', label: 'Transfer', target: true, shows: function (state) { return !state.consult; } },
    { action: 'consult', label: 'Consult', target: true, join: true,
      shows: function (state) { return !state.consult; } },
    { action: 'complete', label: 'Complete transfer', shows: function (state) { return !!state.consult; } },
    { action: 'cancel', label: 'Cancel transfer',
      shows: function (state) { return !!state.consult || (state.calling || []).length > 0; } },
    { action: 'add', label: 'Add to call', target: true, join: true,
      shows: function (state) { return !state.consult; } },
    { action: 'pause_recording', label: 'Pause recording',
      shows: function (state) { return state.recording !== 'paused'; } },
    { action: 'resume_recording', label: 'Resume recording',
      shows: function (state) { return state.recording === 'paused'; } }
  ];
  // Hang up with the customer on hold and the agent out of the room: the bridge ends the call for the customer
  // too, or they would hear the hold music until Twilio's own limit (docs/calls-in-progress.md).
  var END = { action: 'end', ends: true };
  var CHOOSE = 'Choose who, in Transfer to, first.';
  var BEFORE = { on_hold: false, recording: 'on', consult: null, calling: [] };  // a call the bridge has not seen
  var RECORDING = { on: 'Recording', paused: 'Recording paused: the customer is not recorded',
                    off: 'This call is not recorded' };
  var CONTROL_ROUTE = '/softphone/call';
  var WAITING = 'Waiting for the bridge to see the call…';
  var callState = null;    // the bridge's last word on the call (STATE)
  var clicking = false;    // a click in flight: every control waits for its answer
  var controlsTimer = null;
  var controlsFailed = false;  // the error shown is a control's, to clear when the next click works
  var clicks = 0;          // clicks answered: a look sent before one must not undo what it showed

  var roomCall = null;      // the customer's call while the agent is out of its room (on hold): what the page names
  var afterJoin = null;     // a control to carry out once the agent is back in the room
  var joining = false;      // the softphone is calling back into the room
  var hangingUp = false;    // the agent hung up themselves: the call is over for them
  var endedMeanwhile = null;  // the agent's leg ended while a control was in flight (a hold moves the call)

  function legSid() { return (call && call.parameters && call.parameters.CallSid) || roomCall; }

  // The chosen target: an agent ({kind: agent}) or the number typed ({kind: number}); null while none is.
  function chosenTarget() {
    var picked = $('transfer-to').value;
    if (picked === 'number') {
      var number = $('transfer-number').value.trim();
      return number ? { kind: 'number', value: number } : null;
    }
    if (picked.indexOf('line:') === 0) { return { kind: 'line', value: picked.slice(5) }; }
    return picked ? { kind: 'agent', value: picked } : null;
  }

  // The colleagues a call can go to now (offerable), by name and status, and "A phone number…".
  function loadTargets() {
    fetch('/softphone/transfer-targets', { headers: { Authorization: 'Bearer ' + session } })
      .then(function (response) { return response.ok ? response.json() : { agents: [] }; })
      .then(function (body) {
        var select = $('transfer-to');
        var kept = select.value;
        while (select.options.length > 1) { select.remove(1); }
        (body.agents || []).forEach(function (agent) {
          select.add(new Option(agent.name + ' (' + agent.status + ')', agent.identity));
        });
        (body.lines || []).forEach(function (line) { select.add(new Option('Line: ' + line.name, 'line:' + line.key)); });
        select.add(new Option('A phone number…', 'number'));
        select.value = Array.prototype.some.call(select.options, function (o) { return o.value === kept; }) ? kept : '';
        showTarget();
      })
      .catch(function () { /* the list refreshes with the next look */ });
  }

  function showTarget() {
    $('transfer-number').hidden = $('transfer-to').value !== 'number';
    showControls();
  }

  function buildControls() {
    CONTROLS.forEach(function (control) {
      var box = document.createElement('div');
      box.className = 'control';
      box.id = 'control-' + control.action;
      var button = document.createElement('button');
      button.type = 'button';
      button.textContent = control.label;
      button.dataset.action = control.action;
      var why = document.createElement('span');
      why.className = 'why-not';
      why.id = 'why-' + control.action;
      button.setAttribute('aria-describedby', why.id);
      button.addEventListener('click', function () { runControl(control); });
      box.appendChild(button);
      box.appendChild(why);
      $('controls').appendChild(box);
    });
  }

  function roomWords(state) {
    if (!state || !state.room) { return ''; }
    if (state.consult) {
      return state.consult.answered ? 'Consulting ' + who(state.consult.with) + ': the customer is on hold'
        : 'Calling ' + who(state.consult.with) + '… the customer is on hold';
    }
    if ((state.calling || []).length) { return 'Calling ' + state.calling.map(who).join(', ') + '…'; }
    if (state.on_hold) { return 'On hold: the customer hears the hold music'; }
    return '';
  }

  function who(identity) { return String(identity || '').replace(/^client:/, ''); }

  function showControls() {
    var state = callState;
    $('recording-state').textContent = state ? RECORDING[state.recording] || '' : '';
    $('room-state').textContent = roomWords(state);
    CONTROLS.forEach(function (control) {
      var box = $('control-' + control.action);
      var button = box.querySelector('button');
      var reason = state ? state.can[control.action] : WAITING;
      if (reason === null && control.target && !chosenTarget()) { reason = CHOOSE; }
      if (reason === null && control.join && (chosenTarget() || {}).kind === 'line') {
        reason = 'A line takes a transfer only: use Transfer.';
      }
      box.hidden = !control.shows(state || BEFORE);  // before the bridge's word: the controls of a plain call
      button.disabled = clicking || reason !== null;
      button.setAttribute('aria-busy', String(clicking));
      $('why-' + control.action).textContent = reason || '';
    });
  }

  function askCall(method, body) {
    var options = { method: method, headers: { Authorization: 'Bearer ' + session } };
    var path = CONTROL_ROUTE;
    if (body) {
      options.headers['Content-Type'] = 'application/json';
      options.body = JSON.stringify(body);
    } else {
      path += '?call=' + encodeURIComponent(legSid());
    }
    return fetch(path, options).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (answer) {
        if (response.status === 401) {
          throw new Error('Your phone session has expired. Reload Zendesk to sign in again.');
        }
        if (!response.ok) {
          var error = new Error(answer.error || ('The bridge refused the control (HTTP ' + response.status + ').'));
          error.status = response.status;
          throw error;
        }
        return answer.call;
      });
    });
  }

  function refreshControls() {
    if (!legSid()) { return; }
    var asked = legSid();
    var before = clicks;
    askCall('GET').then(function (state) {
      if (asked !== legSid() || before !== clicks || clicking) { return; }
      if (roomCall && !call && !joining && !state.join) { idle(); return; }  // the call went to a colleague
      callState = state;
      showControls();
      if (afterJoin && state.in_room) {  // back in the room: now the control that needed it
        var then = afterJoin;
        afterJoin = null;
        runControl(then.control, then.target);
      }
    }, function (error) {
      // The bridge hears of the answer from Twilio a moment after the page does: 403 until then.
      if (asked !== legSid()) { return; }
      if (roomCall && !call && error.status === 403) { idle(); return; }  // on hold, and the call ended
      if (error.status !== 403) { callState = null; showControls(); }
    });
  }

  function newRequestId() {
    if (window.crypto && window.crypto.randomUUID) { return window.crypto.randomUUID(); }
    var bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return (b + 256).toString(16).slice(1); }).join('');
  }

  function runControl(control, target) {
    if (clicking || !legSid()) { return; }
    clicking = true;
    showControls();
    var body = { call: legSid(), action: control.action, request: newRequestId() };
    if (control.target) { body.target = target || chosenTarget(); }
    askCall('POST', body).then(function (state) {
      clicking = false;
      clicks += 1;
      if (control.ends) { idle(); return; }
      if (controlsFailed) { controlsFailed = false; showError(''); }
      callState = state;
      showControls();
      if (endedMeanwhile) { var gone = endedMeanwhile; endedMeanwhile = null; ended(gone); }
      // Out of the room (the call moved there): Resume, Consult and Add to call bring the agent back in first.
      if (state.join && (control.action === 'resume' || control.join)) {
        if (control.join) { afterJoin = { control: control, target: body.target }; }
        joinRoom(state.parent);
      }
    }, function (error) {
      clicking = false;
      clicks += 1;
      if (control.ends && error.status === 403) { idle(); return; }  // the call had ended already
      if (endedMeanwhile) { var gone = endedMeanwhile; endedMeanwhile = null; ended(gone); }
      controlsFailed = true;
      showError(error instanceof TypeError ? describe(error) : error.message);
      refreshControls();  // show what the bridge holds: the call is as it was
    });
  }

  // Look every second until the bridge knows the call, then every five (another tab or instance may act on it).
  function pollControls() {
    refreshControls();
    if (callState) { loadTargets(); }  // colleagues free up (and get busy) while the call goes on
    controlsTimer = setTimeout(pollControls, callState ? 5000 : 1000);
  }

  function startControls() {
    callState = null;
    clicking = false;
    showControls();
    clearTimeout(controlsTimer);
    pollControls();
    loadTargets();
  }

  // The agent's way back into the call's room: a call of their own, which the bridge lets in (Twilio docs:
  // Voice JavaScript SDK, Device.connect params, forwarded to the TwiML App's Voice URL).
  function joinRoom(parent) {
    if (call || joining || !device) { return; }
    joining = true;
    device.connect({ params: { Room: parent } }).then(function (joined) {
      joining = false;
      follow(joined);
    }, function (error) { joining = false; showError(describe(error)); });
  }

  // The agent's leg ended without their hanging up: when the bridge moved the call into its room (hold, a
  // transfer, a consultation), the call goes on without it; else the call is over.
  function ended(theCall) {
    if (theCall !== call) { return; }
    if (clicking) { endedMeanwhile = theCall; return; }  // the control's answer says whether the call goes on
    var state = callState;
    if (!hangingUp && state && state.room && state.parent && (state.join || afterJoin)) {
      call = null;
      roomCall = state.parent;
      $('call-title').textContent = 'On hold';
      show('call');
      if (afterJoin) { joinRoom(state.parent); }
      return;
    }
    idle();
  }

  function stopControls() {
    roomCall = null;
    endedMeanwhile = null;
    afterJoin = null;
    hangingUp = false;
    clearTimeout(controlsTimer);
    controlsTimer = null;
    callState = null;
    clicking = false;
    if (controlsFailed) { controlsFailed = false; showError(''); }
    showControls();
  }

  // --- The agent's status ---------------------------------------------------------------------------
  var BUSY = { ringing: 'Ringing', on_call: 'On a call', wrap_up: 'Wrap-up' };
  var PRESENCE = '/softphone/presence';
  var checkInMs = 15000;
  var ticker = null;
  var wrapUpTimer = null;
  var soonTimer = null;
  var choosing = 0;            // changes in flight: a check-in answer must not undo what the agent just chose
  var presenceFailed = false;  // the error shown is the status's, to clear when it works again

  function askPresence(method, path, body) {
    var options = { method: method, headers: { Authorization: 'Bearer ' + session } };
    if (body !== undefined) {
      options.headers['Content-Type'] = 'application/json';
      options.body = JSON.stringify(body);
    }
    return fetch(path, options).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (answer) {
        if (response.status === 401) {
          throw new Error('Your phone session has expired. Reload Zendesk to sign in again.');
        }
        if (!response.ok) {
          throw new Error(answer.error || ('The bridge refused your status (HTTP ' + response.status + ').'));
        }
        return answer;
      });
    });
  }

  // Who waits on the agent's lines, as each check-in says: "3 waiting, 1 callback" (docs/callbacks.md).
  function showQueue(queue) {
    var line = $('queue');
    if (!line || !queue) { return; }
    var text = queue.waiting + ' waiting';
    if (queue.callbacks) { text += ', ' + queue.callbacks + (queue.callbacks === 1 ? ' callback' : ' callbacks'); }
    line.textContent = text;
    line.hidden = !(queue.waiting || queue.callbacks);
  }

  function showPresence(state) {
    if (presenceFailed) { presenceFailed = false; showError(''); }
    var select = $('status');
    if (!choosing) { select.value = state.chosen; }
    select.disabled = false;
    document.body.dataset.presence = state.status;
    var busy = $('busy');
    var text = BUSY[state.busy] || '';
    if (state.busy === 'wrap_up' && state.wrap_up_until) {
      text += ' until ' + new Date(state.wrap_up_until).toLocaleTimeString();
    }
    busy.textContent = text;
    busy.hidden = !text;
    $('end-wrap-up').hidden = state.busy !== 'wrap_up';
    $('why').textContent = state.why || '';
    $('why').hidden = !state.why;
    showQueue(state.queue);
    // Look again when wrap-up is due to end, so it does not linger up to a check-in on the screen.
    clearTimeout(wrapUpTimer);
    if (state.wrap_up_until) {
      wrapUpTimer = setTimeout(checkIn, Math.max(0, Date.parse(state.wrap_up_until) - Date.now()) + 500);
    }
    var every = Math.round((state.check_in_seconds || 15) * 1000);
    if (every !== checkInMs) { checkInMs = every; pace(); }
  }

  function presenceError(error) {
    presenceFailed = true;
    showError(error instanceof TypeError ? describe(error) : error.message);
  }

  function checkIn() {
    return askPresence('GET', PRESENCE).then(showPresence, presenceError);
  }

  // A call started or ended here: the bridge hears of it from Twilio a moment later, so look now and again.
  function checkInSoon() {
    checkIn();
    clearTimeout(soonTimer);
    soonTimer = setTimeout(checkIn, 2000);
  }

  function choose(status) {
    choosing += 1;
    askPresence('POST', PRESENCE, { status: status }).then(function (state) {
      choosing -= 1;
      showPresence(state);
    }, function (error) {
      choosing -= 1;
      presenceError(error);
      checkIn();  // show what the bridge holds, not what the agent picked
    });
  }

  // The check-in clock runs in a worker (ticker.js): a hidden tab's own timers are throttled to a minute.
  function pace() {
    if (ticker && ticker.postMessage) { ticker.postMessage(checkInMs); return; }
    clearInterval(ticker);
    ticker = setInterval(checkIn, checkInMs);
  }

  function startPresence() {
    if (typeof Worker === 'function') {
      try {
        ticker = new Worker('/softphone/static/ticker.js');
        ticker.onmessage = checkIn;
        // A worker that cannot load (a proxy, a policy) must not stop the check-ins: the page's own timer then.
        ticker.onerror = function () { ticker = null; pace(); };
      } catch (error) { ticker = null; }
    }
    pace();
    checkIn();
  }

  $('status').addEventListener('change', function () { choose(this.value); });
  $('end-wrap-up').addEventListener('click', function () {
    $('status').focus();  // the button hides itself: keep the keyboard's place on the page
    askPresence('POST', PRESENCE + '/wrap-up').then(showPresence, presenceError);
  });
  // A beacon outlives the page but sends no headers: the session goes in its body (text/plain).
  window.addEventListener('pagehide', function () {
    if (navigator.sendBeacon) { navigator.sendBeacon(PRESENCE + '/goodbye', session); }
  });
  window.addEventListener('pageshow', function (event) { if (event.persisted) { checkIn(); } });

  // The lines the agent may call from, when there is a choice (the bridge checks the choice is theirs).
  function showLines() {
    if (!config.lines || config.lines.length < 2) { return; }
    var select = $('call-from');
    config.lines.forEach(function (line) {
      var option = document.createElement('option');
      option.value = line.number;
      option.textContent = line.name === line.number ? line.number : line.name + ' (' + line.number + ')';
      select.appendChild(option);
    });
    $('call-from-row').hidden = false;
  }

  function start() {
    $('who').textContent = config.identity;
    buildControls();
    showLines();
    startPresence();
    setState('offline');
    show('dial');
    if (zaf) { zaf.invoke('resize', { width: '320px', height: '500px' }); }
    if (!window.Twilio || !window.Twilio.Device) {
      showError('The Twilio Voice SDK did not load. Check your network connection and reload.');
      return;
    }
    fetchToken().then(function (token) {
      device = new window.Twilio.Device(token, { closeProtection: true, codecPreferences: ['opus', 'pcmu'] });
      device.on('registered', function () { registered = true; showError(''); if (!call) { setState('ready'); } });
      device.on('unregistered', function () { registered = false; if (!call) { setState('offline'); } });
      device.on('error', function (error) { showError(describe(error)); });
      device.on('incoming', onIncoming);
      device.on('tokenWillExpire', function () {
        fetchToken().then(function (fresh) { device.updateToken(fresh); }, fail);
      });
      return device.register();
    }).catch(fail);
  }

  $('answer').addEventListener('click', function () { if (call) { call.accept(); } });
  $('decline').addEventListener('click', function () { if (call) { call.reject(); idle(); } });
  $('hangup').addEventListener('click', function () {
    if (!call && roomCall) { runControl(END); return; }
    hangingUp = true;
    if (call) { call.disconnect(); }
    idle();
  });
  $('transfer-to').addEventListener('change', showTarget);
  $('transfer-to').addEventListener('focus', loadTargets);
  $('transfer-number').addEventListener('input', showControls);
  $('mute').addEventListener('click', function () {
    if (!call) { return; }
    var muted = !call.isMuted();
    call.mute(muted);
    this.setAttribute('aria-pressed', String(muted));
    this.textContent = muted ? 'Unmute' : 'Mute';
  });
  $('keypad').addEventListener('click', function (event) {
    var digit = event.target && event.target.dataset && event.target.dataset.digit;
    if (digit && call) { call.sendDigits(digit); }
  });
  $('dial').addEventListener('submit', function (event) {
    event.preventDefault();
    dial($('dial-number').value, $('dial-ticket').value);
  });
  window.addEventListener('offline', function () {
    setState('offline');
    showError('Your network connection was lost. The phone comes back when it returns.');
  });
  window.addEventListener('online', function () {
    showError('');
    if (!call) { setState(registered ? 'ready' : 'offline'); }
  });
  if (zaf) {
    // From the background location: Zendesk's click-to-call (voice.dialout) with the ticket it came from.
    zaf.on('softphone.dial', function (data) {
      zaf.invoke('popover', 'show');
      $('dial-number').value = data.number || '';
      $('dial-ticket').value = data.ticketId || '';
      dial(data.number, data.ticketId);
    });
  }
  start();
})();
