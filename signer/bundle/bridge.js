// Our loopback channel between the signing process and this page. Python sends
// {id, items} batches over a WebSocket and gets {id, results} back: a fraction of a
// millisecond, where a Playwright evaluate round trip costs about two.
(function () {
  'use strict';
  const G = globalThis;
  if (G.__ttbridge) return;
  const state = { socket: null, closed: false };
  function connect(url) {
    return new Promise(function (resolve, reject) {
      const ws = new WebSocket(url);
      state.socket = ws;
      ws.onopen = function () { resolve(true); };
      ws.onerror = function () { reject(new Error('bridge connection failed: ' + url)); };
      ws.onclose = function () { state.closed = true; };
      ws.onmessage = async function (event) {
        let msg;
        try { msg = JSON.parse(event.data); } catch (e) { return; }
        let reply;
        try {
          reply = { id: msg.id, results: await G.__ttsigner.signBatch(msg.items) };
        } catch (e) {
          reply = { id: msg.id, error: String((e && e.message) || e) };
        }
        ws.send(JSON.stringify(reply));
      };
    });
  }
  Object.defineProperty(G, '__ttbridge', {
    value: Object.freeze({ connect: connect, state: state }),
    enumerable: false,
  });
})();
