#!/usr/bin/env node
// Signs the initial webcast/im/fetch URL with tiktok-live-connector 1.x's own sign provider,
// the way its TikTokHttpClient does, against the sign server given on the command line.
//
//   node sign_v1.js BASE_URL [options|config] [API_KEY]
//
// BASE_URL ends in '/' (the client appends 'webcast/sign_url').
//   options: the host comes from signProviderOptions.host (what WebcastPushConnection passes);
//   config:  the host comes from signatureProvider.config.signProviderHost.
// The hosted fallbacks are removed, so nothing leaves this machine: a failure on our server
// ends in the client's own SignatureError instead of a request to another host.
//
// Prints one JSON line: what the client took from our answer, or {ok: false, error}.
'use strict';

const { signatureProvider } = require('tiktok-live-connector');
const TikTokHttpClient = require('tiktok-live-connector/dist/lib/tiktokHttpClient.js');
const Config = require('tiktok-live-connector/dist/lib/webcastConfig.js');

const [base, mode = 'options', apiKey] = process.argv.slice(2);
if (!base) {
  console.error('usage: node sign_v1.js BASE_URL [options|config] [API_KEY]');
  process.exit(2);
}

const ROOM_ID = '7312345678901234567';
// Never reached: stands where the hosted default was, so a fall-through stays on loopback.
const UNUSED_HOST = 'http://127.0.0.1:9/';

async function main() {
  const signProviderOptions = {};
  if (mode === 'options') {
    signatureProvider.config.signProviderHost = UNUSED_HOST;
    signProviderOptions.host = base;
  } else if (mode === 'config') {
    signatureProvider.config.signProviderHost = base;
  } else {
    throw new Error(`unknown mode ${mode}`);
  }
  signatureProvider.config.signProviderFallbackHosts = [];
  if (apiKey) {
    signProviderOptions.params = { apiKey };
  }

  const events = [];
  signatureProvider.signEvents.on('signSuccess', (event) =>
    events.push({ type: 'signSuccess', signHost: event.signHost }),
  );
  signatureProvider.signEvents.on('signError', (event) =>
    events.push({ type: 'signError', signHost: event.signHost, error: String(event.error) }),
  );

  // The same objects WebcastPushConnection builds: its HTTP client's headers and cookie jar
  // are what the sign provider writes the answer's User-Agent and msToken into.
  const httpClient = new TikTokHttpClient(undefined, undefined, signProviderOptions, undefined);
  const clientParams = { ...Config.DEFAULT_CLIENT_PARAMS, room_id: ROOM_ID };
  // TikTokHttpClient#buildUrl, for the initial 'im/fetch/' request (the one it signs).
  const unsignedUrl = `${Config.TIKTOK_URL_WEBCAST}im/fetch/?${new URLSearchParams(clientParams)}`;
  const headers = httpClient.axiosInstance.defaults.headers;
  const userAgentBefore = headers['User-Agent'];

  const signedUrl = await signatureProvider.signWebcastRequest(
    unsignedUrl,
    headers,
    httpClient.cookieJar,
    httpClient.signProviderOptions,
  );

  return {
    ok: true,
    mode,
    unsignedUrl,
    signedUrl,
    userAgent: headers['User-Agent'],
    userAgentBefore,
    msToken: httpClient.cookieJar.getCookieByName('msToken'),
    cookieString: httpClient.cookieJar.getCookieString(),
    events,
  };
}

main().then(
  (result) => {
    process.stdout.write(`${JSON.stringify(result)}\n`);
  },
  (error) => {
    process.stdout.write(
      `${JSON.stringify({ ok: false, name: error && error.name, error: String(error && error.message) })}\n`,
    );
    process.exitCode = 1;
  },
);
