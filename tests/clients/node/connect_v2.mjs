#!/usr/bin/env node
// tiktok-live-connector 2.5.0 (installed as the npm alias `tlc2`), unmodified, opening a LIVE
// by handle through our sign server, as tests/clients/test_connect.py drives it.
//
//   SIGN_API_URL=http://127.0.0.1:8080 SIGN_API_KEY=sk_... node connect_v2.mjs HOST:PORT
//
// The sign server and key come from the environment, which the library reads at import
// (spec section 8.1). HOST:PORT is the fake TikTok for both TikTok hosts; give a
// non-loopback name such as 0.0.0.0: 2.3 and later speak https to loopback names (the
// scheme trap of spec 8.1).
//
// Prints one JSON line per event ({event: 'connected' | 'chat' | 'gift' | 'live_end' |
// 'error' | 'closed', ...}); exits 0 after the live end, 1 when connecting fails.
import { TikTokLiveConnection, WebcastEvent, ControlEvent } from 'tlc2';

const [tiktokHost] = process.argv.slice(2);
if (!tiktokHost || !process.env.SIGN_API_URL) {
  console.error('usage: SIGN_API_URL=... [SIGN_API_KEY=...] node connect_v2.mjs HOST:PORT');
  process.exit(2);
}

const out = (fields) => process.stdout.write(`${JSON.stringify(fields)}\n`);
const user = (data) => ({ nickname: data.user?.nickname, unique_id: data.user?.displayId });

const connection = new TikTokLiveConnection('sandbox', {
  webConfigOverrides: { TIKTOK_HOST_WEB: tiktokHost, TIKTOK_HOST_WEBCAST: tiktokHost },
});

let ended = false;
connection.on(WebcastEvent.CHAT, (data) => out({ event: 'chat', text: data.content, ...user(data) }));
connection.on(WebcastEvent.GIFT, (data) =>
  out({
    event: 'gift',
    name: data.gift?.name,
    gift_id: Number(data.giftId),
    repeat_end: Boolean(data.repeatEnd),
    ...user(data),
  }),
);
connection.on(WebcastEvent.STREAM_END, () => {
  ended = true;
  out({ event: 'live_end' });
});
// The library disconnects itself after a stream end.
connection.on(ControlEvent.DISCONNECTED, () => {
  out({ event: 'closed', live_end: ended });
  process.exit(ended ? 0 : 1);
});

try {
  const state = await connection.connect();
  out({ event: 'connected', room_id: String(state.roomId) });
} catch (error) {
  out({ event: 'error', error: `${error?.name}: ${error?.message}` });
  process.exit(1);
}
