// Fakes of the two globals the softphone page uses, for the browser tests and `bridge demo --softphone`:
// ZAFClient (Zendesk's app framework) and Twilio.Device (@twilio/voice-sdk). Loaded before the page's own
// scripts; the real SDK bundle keeps an existing Twilio.Device (`Twilio.Device || Voice.Device`).
// window.__fake drives them: ring(from[, callSid]), answerRemote(), hangUpRemote(), error(code), expireSoon().
(function () {
  'use strict';
  if (window.__fake) { return; }
  var fake = window.__fake = {
    log: [],            // what the page asked of the SDK and of ZAF, in order
    device: null,
    lastCall: null,
    users: {},          // Zendesk user id -> {name}, answered by the fake client.request
    micRefused: false,  // accept() then fails as a browser that refused the microphone does
    onConnect: null,    // demo: called with the params of each call out
    onAccept: null,     // demo: called with each incoming call the agent accepts
    onReject: null,     // demo: called with each incoming call the agent declines
    onDisconnect: null  // demo: called with each call the agent hangs up
  };

  function Emitter() { this.handlers = {}; }
  Emitter.prototype.on = function (name, handler) {
    (this.handlers[name] = this.handlers[name] || []).push(handler);
    return this;
  };
  Emitter.prototype.emit = function (name) {
    var args = Array.prototype.slice.call(arguments, 1);
    (this.handlers[name] || []).slice().forEach(function (handler) { handler.apply(null, args); });
  };

  // --- Twilio.Device ------------------------------------------------------------------------------------
  function FakeCall(parameters, direction) {
    Emitter.call(this);
    this.parameters = parameters;
    this.direction = direction;
    this.muted = false;
  }
  FakeCall.prototype = Object.create(Emitter.prototype);
  FakeCall.prototype.accept = function () {
    fake.log.push(['accept', this.parameters.CallSid || null]);
    if (fake.micRefused) {
      var error = { code: 31208, message: 'UserMediaError: Permission denied' };
      this.emit('error', error);
      fake.device.emit('error', error, this);
      return;
    }
    this.emit('accept', this);
    if (fake.onAccept) { fake.onAccept(this); }
  };
  FakeCall.prototype.reject = function () {
    fake.log.push(['reject']);
    this.emit('reject');
    if (fake.onReject) { fake.onReject(this); }
  };
  FakeCall.prototype.disconnect = function () {
    fake.log.push(['disconnect']);
    this.emit('disconnect', this);
    if (fake.onDisconnect) { fake.onDisconnect(this); }
  };
  FakeCall.prototype.mute = function (muted) {
    this.muted = muted !== false;
    fake.log.push(['mute', this.muted]);
    this.emit('mute', this.muted, this);
  };
  FakeCall.prototype.isMuted = function () { return this.muted; };
  FakeCall.prototype.sendDigits = function (digits) { fake.log.push(['digits', digits]); };

  function FakeDevice(token, options) {
    Emitter.call(this);
    this.token = token;
    this.options = options;
    fake.device = this;
    fake.log.push(['device', token ? 'token' : 'no token']);
  }
  FakeDevice.prototype = Object.create(Emitter.prototype);
  FakeDevice.prototype.register = function () {
    var self = this;
    fake.log.push(['register']);
    return Promise.resolve().then(function () { self.emit('registered'); });
  };
  FakeDevice.prototype.updateToken = function (token) { this.token = token; fake.log.push(['updateToken']); };
  FakeDevice.prototype.connect = function (options) {
    var params = (options && options.params) || {};
    fake.log.push(['connect', params]);
    var call = fake.lastCall = new FakeCall(params, 'OUTGOING');
    if (fake.onConnect) { fake.onConnect(params, call); }
    return Promise.resolve(call);
  };
  FakeDevice.prototype.destroy = function () { fake.log.push(['destroy']); };

  fake.ring = function (from, callSid) {
    var call = fake.lastCall = new FakeCall({ From: from, CallSid: callSid || 'CA' + Date.now() }, 'INCOMING');
    fake.device.emit('incoming', call);
    return call;
  };
  fake.answerRemote = function () { fake.lastCall.emit('accept', fake.lastCall); };
  fake.hangUpRemote = function () { fake.lastCall.emit('disconnect', fake.lastCall); };
  fake.error = function (code, message) { fake.device.emit('error', { code: code, message: message || '' }); };
  fake.expireSoon = function () { fake.device.emit('tokenWillExpire', fake.device); };

  window.Twilio = window.Twilio || {};
  window.Twilio.Device = FakeDevice;

  // --- ZAFClient ----------------------------------------------------------------------------------------
  // Locations talk through instance(guid).trigger(); across the two pages of a test that is a BroadcastChannel.
  var location = /background/.test(window.location.pathname) ? 'background' : 'top_bar';
  var guids = { top_bar: 'guid-top-bar', background: 'guid-background' };
  var channel = typeof BroadcastChannel === 'function' ? new BroadcastChannel('fake-zaf') : null;
  var client = new Emitter();
  client.location = location;
  client.fire = function (name, data) { client.emit(name, data); };  // what Zendesk would send this location
  client.invoke = function () {
    var args = Array.prototype.slice.call(arguments);
    fake.log.push(['zaf.invoke'].concat(args));
    return Promise.resolve({});
  };
  client.get = function (path) {
    if (path === 'instances') {
      var instances = {};
      instances[guids.top_bar] = { location: 'top_bar' };
      instances[guids.background] = { location: 'background' };
      return Promise.resolve({ instances: instances });
    }
    return Promise.resolve({});
  };
  client.request = function (options) {
    var url = typeof options === 'string' ? options : options.url;
    var match = /\/api\/v2\/users\/(\d+)\.json/.exec(url);
    var user = match && fake.users[match[1]];
    return user ? Promise.resolve({ user: user }) : Promise.reject(new Error('404'));
  };
  client.instance = function (guid) {
    return {
      trigger: function (name, data) {
        fake.log.push(['zaf.trigger', guid, name, data]);
        if (guid === guids[location]) { client.emit(name, data); } else if (channel) {
          channel.postMessage({ guid: guid, name: name, data: data });
        }
      }
    };
  };
  if (channel) {
    channel.onmessage = function (event) {
      if (event.data.guid === guids[location]) { client.emit(event.data.name, event.data.data); }
    };
  }
  fake.zaf = client;
  window.ZAFClient = { init: function () { return client; } };
})();
