#!/usr/bin/env node
// tiktok-live-connector 1.2.3, unmodified, opening a LIVE by handle: it signs its im/fetch
// URL through our `GET /webcast/sign_url` and fetches that URL itself (spec section 1), as
// tests/clients/test_connect.py drives it.
//
//   node connect_v1.js SIGN_URL WEB_URL WEBCAST_URL|- [API_KEY]
//
// SIGN_URL ends in '/' (the client appends 'webcast/sign_url'). WEB_URL and WEBCAST_URL are
// the fake TikTok's www and webcast bases, set where the library reads them (its
// webcastConfig module, spec 8.1). WEBCAST_URL '-' keeps the library's
// https://webcast.tiktok.com/webcast/: the URL it has signed is then TikTok's, and a sign
// server pointed at a local TikTok (SIGNER_TIKTOK_WEBCAST_URL) answers it moved onto that
// TikTok; the client's own room/info request, which would go to TikTok, is switched off
// (fetchRoomInfoOnConnect), the room id still comes from the live page by handle.
// The hosted fallback sign servers are removed, so nothing leaves this machine.
//
// Prints one JSON line per event ({event: 'connected' | 'chat' | 'gift' | 'live_end' |
// 'error' | 'closed', ...}); exits 0 after the live end, 1 when connecting fails.
'use strict';

const { WebcastPushConnection, signatureProvider } = require('tiktok-live-connector');
const Config = require('tiktok-live-connector/dist/lib/webcastConfig.js');

const [signUrl, webUrl, webcastUrl, apiKey] = process.argv.slice(2);
if (!signUrl || !webUrl || !webcastUrl) {
  console.error('usage: node connect_v1.js SIGN_URL WEB_URL WEBCAST_URL|- [API_KEY]');
  process.exit(2);
}

const out = (fields) => process.stdout.write(`${JSON.stringify(fields)}\n`);

signatureProvider.config.signProviderHost = signUrl;
signatureProvider.config.signProviderFallbackHosts = [];
Config.TIKTOK_URL_WEB = `${webUrl}/`;
const ownWebcast = webcastUrl !== '-';
if (ownWebcast) Config.TIKTOK_URL_WEBCAST = `${webcastUrl}/webcast/`;

const connection = new WebcastPushConnection('sandbox', {
  fetchRoomInfoOnConnect: ownWebcast,
  signProviderOptions: { host: signUrl, ...(apiKey ? { params: { apiKey } } : {}) },
});

let ended = false;
connection.on('chat', (data) =>
  out({ event: 'chat', text: data.comment, nickname: data.nickname, unique_id: data.uniqueId }),
);
connection.on('gift', (data) =>
  out({
    event: 'gift',
    name: data.giftName,
    gift_id: Number(data.giftId),
    repeat_end: Boolean(data.repeatEnd),
    nickname: data.nickname,
    unique_id: data.uniqueId,
  }),
);
connection.on('streamEnd', () => {
  ended = true;
  out({ event: 'live_end' });
});
connection.on('disconnected', () => {
  out({ event: 'closed', live_end: ended });
  process.exit(ended ? 0 : 1);
});

connection
  .connect()
  .then((state) => out({ event: 'connected', room_id: String(state.roomId) }))
  .catch((error) => {
    out({ event: 'error', error: `${error?.name}: ${error?.message}` });
    process.exit(1);
  });
