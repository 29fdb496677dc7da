// The app's background location: always running, it hears Zendesk's click-to-call and hands it to the phone.
// Zendesk docs, "Talk Partner Edition": an agent clicking a phone number fires `voice.dialout` with
// {number, userId, ticketId}; ZAF's client.get('instances') and client.instance(guid).trigger(...) reach the
// top bar location (Zendesk docs, "ZAF Client API": instances, instance, trigger).
(function () {
  'use strict';
  var client = window.ZAFClient.init();

  function toTopBar(dialout) {
    return client.get('instances').then(function (data) {
      var instances = data.instances || {};
      Object.keys(instances).forEach(function (guid) {
        if (instances[guid].location === 'top_bar') {
          client.instance(guid).trigger('softphone.dial', {
            number: String(dialout.number || ''),
            ticketId: dialout.ticketId || null,
            userId: dialout.userId || null
          });
        }
      });
    });
  }

  client.on('voice.dialout', toTopBar);
})();
