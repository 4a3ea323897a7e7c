/*
 * signer/bundle/signer.js -- in-page request-signing bundle.
 *
 * Plain JavaScript, no imports, no build step. Written from the wire-format notes in
 * shared/specs/signing.md and the token contract shared with the Python modules
 * (signer/*.py); for identical inputs both produce identical X-Bogus / X-Gnarly /
 * x-tt-params strings.
 *
 * Injected into a Chromium page (Playwright add_script_tag / add_init_script) and also
 * loadable in Node >= 20 for checks: browser-only parts are guarded, and everything
 * is exposed as globalThis.__ttsigner.
 */
(function () {
  'use strict';

  const VERSION = '1.0.0';
  const G = typeof globalThis !== 'undefined' ? globalThis : (typeof self !== 'undefined' ? self : this);
  // Re-injecting the same version into the same document keeps the existing instance
  // (and its init state / counters).
  if (G.__ttsigner && G.__ttsigner.version === VERSION) return;

  // Captured at load so later page scripts cannot swap them under us.
  const CRYPTO = G.crypto;
  const SUBTLE = CRYPTO && CRYPTO.subtle ? CRYPTO.subtle : null;

  // ---------------------------------------------------------------------------------
  // Small helpers
  // ---------------------------------------------------------------------------------

  function errMsg(e) {
    if (e && typeof e.message === 'string') return e.message;
    return String(e);
  }

  /** Accepts Uint8Array | ArrayBuffer | ArrayBufferView | number[] | string | null. */
  function toBytes(x) {
    if (x == null) return EMPTY;
    if (x instanceof Uint8Array) return x;
    if (typeof x === 'string') return utf8(x);
    if (x instanceof ArrayBuffer) return new Uint8Array(x);
    if (ArrayBuffer.isView(x)) return new Uint8Array(x.buffer, x.byteOffset, x.byteLength);
    if (Array.isArray(x)) return Uint8Array.from(x);
    throw new TypeError('expected bytes');
  }
  const EMPTY = new Uint8Array(0);

  // UTF-8 into a shared scratch buffer (returns the byte count). TextEncoder.encodeInto
  // is native and much faster than a JS loop; the loop is only a fallback. Lone
  // surrogates become U+FFFD either way.
  const TENC = typeof TextEncoder === 'function' ? new TextEncoder() : null;
  const HAS_ENCODE_INTO = !!(TENC && typeof TENC.encodeInto === 'function');
  let UBUF = new Uint8Array(8192);
  function utf8Into(str) {
    const n = str.length;
    if (n * 3 > UBUF.length) UBUF = new Uint8Array(n * 3 + 1024);
    if (HAS_ENCODE_INTO) return TENC.encodeInto(str, UBUF).written;
    const b = UBUF;
    let p = 0;
    for (let i = 0; i < n; i++) {
      let c = str.charCodeAt(i);
      if (c < 0x80) { b[p++] = c; continue; }
      if (c < 0x800) { b[p++] = 0xc0 | (c >> 6); b[p++] = 0x80 | (c & 63); continue; }
      if (c >= 0xd800 && c <= 0xdfff) {
        const d = i + 1 < n ? str.charCodeAt(i + 1) : 0;
        if (c <= 0xdbff && d >= 0xdc00 && d <= 0xdfff) {
          c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
          i++;
          b[p++] = 0xf0 | (c >> 18); b[p++] = 0x80 | ((c >> 12) & 63);
          b[p++] = 0x80 | ((c >> 6) & 63); b[p++] = 0x80 | (c & 63);
          continue;
        }
        c = 0xfffd;
      }
      b[p++] = 0xe0 | (c >> 12); b[p++] = 0x80 | ((c >> 6) & 63); b[p++] = 0x80 | (c & 63);
    }
    return p;
  }

  function utf8(str) {
    const n = utf8Into(String(str));
    return UBUF.slice(0, n);
  }

  // Bulk random bytes from crypto.getRandomValues, served from a pool.
  const RPOOL = new Uint8Array(4096);
  let rpos = RPOOL.length;
  function randByte() {
    if (rpos >= RPOOL.length) {
      if (!CRYPTO || typeof CRYPTO.getRandomValues !== 'function') throw new Error('crypto.getRandomValues unavailable');
      CRYPTO.getRandomValues(RPOOL);
      rpos = 0;
    }
    return RPOOL[rpos++];
  }
  function randBytes(n) {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = randByte();
    return out;
  }
  function randU16() { return (randByte() << 8) | randByte(); }
  function randU32() { return ((randByte() << 24) | (randByte() << 16) | (randByte() << 8) | randByte()) >>> 0; }

  // Base64 with any 64-char alphabet (given as a 64-byte table of char codes), 3 bytes ->
  // 4 chars big-endian, optional '=' padding. Chars are written into a scratch byte
  // buffer and turned into a string by the native (ASCII fast path) TextDecoder.
  const TDEC = typeof TextDecoder === 'function' ? new TextDecoder('utf-8') : null;
  let B64_OUT = new Uint8Array(2048);
  function alphaCodes(alpha) {
    const a = new Uint8Array(64);
    for (let i = 0; i < 64; i++) a[i] = alpha.charCodeAt(i);
    return a;
  }
  function b64enc(bytes, len, ac, pad) {
    const need = Math.ceil(len / 3) * 4;
    if (need > B64_OUT.length) B64_OUT = new Uint8Array(need + 1024);
    const o = B64_OUT;
    let p = 0, i = 0;
    const full = len - (len % 3);
    for (; i < full; i += 3) {
      const v = (bytes[i] << 16) | (bytes[i + 1] << 8) | bytes[i + 2];
      o[p] = ac[v >>> 18]; o[p + 1] = ac[(v >>> 12) & 63]; o[p + 2] = ac[(v >>> 6) & 63]; o[p + 3] = ac[v & 63];
      p += 4;
    }
    const rem = len - full;
    if (rem === 1) {
      const v = bytes[i] << 16;
      o[p++] = ac[v >>> 18]; o[p++] = ac[(v >>> 12) & 63];
      if (pad) { o[p++] = 61; o[p++] = 61; }
    } else if (rem === 2) {
      const v = (bytes[i] << 16) | (bytes[i + 1] << 8);
      o[p++] = ac[v >>> 18]; o[p++] = ac[(v >>> 12) & 63]; o[p++] = ac[(v >>> 6) & 63];
      if (pad) o[p++] = 61;
    }
    if (TDEC) return TDEC.decode(o.subarray(0, p));
    let s = '';
    for (let k = 0; k < p; k += 4096) s += String.fromCharCode.apply(null, o.subarray(k, Math.min(p, k + 4096)));
    return s;
  }

  const B64_STD = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
  const B64_STD_C = alphaCodes(B64_STD);
  const B64_DEC = new Int16Array(128).fill(-1);
  for (let i = 0; i < 64; i++) B64_DEC[B64_STD.charCodeAt(i)] = i;
  B64_DEC[45] = 62; // '-' (url-safe)
  B64_DEC[95] = 63; // '_' (url-safe)

  /** Decodes standard or url-safe base64, padding optional, whitespace ignored. */
  function b64decode(str) {
    const out = new Uint8Array(Math.floor(str.length * 3 / 4) + 3);
    let acc = 0, bits = 0, p = 0;
    for (let i = 0; i < str.length; i++) {
      const c = str.charCodeAt(i);
      if (c === 61) break; // '='
      if (c === 32 || c === 10 || c === 13 || c === 9) continue;
      const v = c < 128 ? B64_DEC[c] : -1;
      if (v < 0) throw new Error('invalid base64 body');
      acc = ((acc << 6) | v) & 0xffffff;
      bits += 6;
      if (bits >= 8) { bits -= 8; out[p++] = (acc >>> bits) & 255; }
    }
    return out.slice(0, p);
  }

  const HEXC = new Uint8Array(16);
  for (let i = 0; i < 16; i++) HEXC[i] = '0123456789abcdef'.charCodeAt(i);
  const HEX2 = new Array(256);
  for (let i = 0; i < 256; i++) HEX2[i] = (i < 16 ? '0' : '') + i.toString(16);

  // ---------------------------------------------------------------------------------
  // MD5 (RFC 1321), unrolled. md5Core leaves the digest in H0..H3 (little-endian words).
  // ---------------------------------------------------------------------------------

  let H0 = 0, H1 = 0, H2 = 0, H3 = 0;
  const MD5_TAIL = new Uint8Array(128);

  function md5Compress(p, o) {
    const m0 = p[o] | (p[o + 1] << 8) | (p[o + 2] << 16) | (p[o + 3] << 24);
    const m1 = p[o + 4] | (p[o + 5] << 8) | (p[o + 6] << 16) | (p[o + 7] << 24);
    const m2 = p[o + 8] | (p[o + 9] << 8) | (p[o + 10] << 16) | (p[o + 11] << 24);
    const m3 = p[o + 12] | (p[o + 13] << 8) | (p[o + 14] << 16) | (p[o + 15] << 24);
    const m4 = p[o + 16] | (p[o + 17] << 8) | (p[o + 18] << 16) | (p[o + 19] << 24);
    const m5 = p[o + 20] | (p[o + 21] << 8) | (p[o + 22] << 16) | (p[o + 23] << 24);
    const m6 = p[o + 24] | (p[o + 25] << 8) | (p[o + 26] << 16) | (p[o + 27] << 24);
    const m7 = p[o + 28] | (p[o + 29] << 8) | (p[o + 30] << 16) | (p[o + 31] << 24);
    const m8 = p[o + 32] | (p[o + 33] << 8) | (p[o + 34] << 16) | (p[o + 35] << 24);
    const m9 = p[o + 36] | (p[o + 37] << 8) | (p[o + 38] << 16) | (p[o + 39] << 24);
    const m10 = p[o + 40] | (p[o + 41] << 8) | (p[o + 42] << 16) | (p[o + 43] << 24);
    const m11 = p[o + 44] | (p[o + 45] << 8) | (p[o + 46] << 16) | (p[o + 47] << 24);
    const m12 = p[o + 48] | (p[o + 49] << 8) | (p[o + 50] << 16) | (p[o + 51] << 24);
    const m13 = p[o + 52] | (p[o + 53] << 8) | (p[o + 54] << 16) | (p[o + 55] << 24);
    const m14 = p[o + 56] | (p[o + 57] << 8) | (p[o + 58] << 16) | (p[o + 59] << 24);
    const m15 = p[o + 60] | (p[o + 61] << 8) | (p[o + 62] << 16) | (p[o + 63] << 24);
    let a = H0, b = H1, c = H2, d = H3;
      a = (a + (d ^ (b & (c ^ d))) + m0 - 0x28955b88) | 0; a = (((a << 7) | (a >>> 25)) + b) | 0;
      d = (d + (c ^ (a & (b ^ c))) + m1 - 0x173848aa) | 0; d = (((d << 12) | (d >>> 20)) + a) | 0;
      c = (c + (b ^ (d & (a ^ b))) + m2 + 0x242070db) | 0; c = (((c << 17) | (c >>> 15)) + d) | 0;
      b = (b + (a ^ (c & (d ^ a))) + m3 - 0x3e423112) | 0; b = (((b << 22) | (b >>> 10)) + c) | 0;
      a = (a + (d ^ (b & (c ^ d))) + m4 - 0xa83f051) | 0; a = (((a << 7) | (a >>> 25)) + b) | 0;
      d = (d + (c ^ (a & (b ^ c))) + m5 + 0x4787c62a) | 0; d = (((d << 12) | (d >>> 20)) + a) | 0;
      c = (c + (b ^ (d & (a ^ b))) + m6 - 0x57cfb9ed) | 0; c = (((c << 17) | (c >>> 15)) + d) | 0;
      b = (b + (a ^ (c & (d ^ a))) + m7 - 0x2b96aff) | 0; b = (((b << 22) | (b >>> 10)) + c) | 0;
      a = (a + (d ^ (b & (c ^ d))) + m8 + 0x698098d8) | 0; a = (((a << 7) | (a >>> 25)) + b) | 0;
      d = (d + (c ^ (a & (b ^ c))) + m9 - 0x74bb0851) | 0; d = (((d << 12) | (d >>> 20)) + a) | 0;
      c = (c + (b ^ (d & (a ^ b))) + m10 - 0xa44f) | 0; c = (((c << 17) | (c >>> 15)) + d) | 0;
      b = (b + (a ^ (c & (d ^ a))) + m11 - 0x76a32842) | 0; b = (((b << 22) | (b >>> 10)) + c) | 0;
      a = (a + (d ^ (b & (c ^ d))) + m12 + 0x6b901122) | 0; a = (((a << 7) | (a >>> 25)) + b) | 0;
      d = (d + (c ^ (a & (b ^ c))) + m13 - 0x2678e6d) | 0; d = (((d << 12) | (d >>> 20)) + a) | 0;
      c = (c + (b ^ (d & (a ^ b))) + m14 - 0x5986bc72) | 0; c = (((c << 17) | (c >>> 15)) + d) | 0;
      b = (b + (a ^ (c & (d ^ a))) + m15 + 0x49b40821) | 0; b = (((b << 22) | (b >>> 10)) + c) | 0;
      a = (a + (c ^ (d & (b ^ c))) + m1 - 0x9e1da9e) | 0; a = (((a << 5) | (a >>> 27)) + b) | 0;
      d = (d + (b ^ (c & (a ^ b))) + m6 - 0x3fbf4cc0) | 0; d = (((d << 9) | (d >>> 23)) + a) | 0;
      c = (c + (a ^ (b & (d ^ a))) + m11 + 0x265e5a51) | 0; c = (((c << 14) | (c >>> 18)) + d) | 0;
      b = (b + (d ^ (a & (c ^ d))) + m0 - 0x16493856) | 0; b = (((b << 20) | (b >>> 12)) + c) | 0;
      a = (a + (c ^ (d & (b ^ c))) + m5 - 0x29d0efa3) | 0; a = (((a << 5) | (a >>> 27)) + b) | 0;
      d = (d + (b ^ (c & (a ^ b))) + m10 + 0x2441453) | 0; d = (((d << 9) | (d >>> 23)) + a) | 0;
      c = (c + (a ^ (b & (d ^ a))) + m15 - 0x275e197f) | 0; c = (((c << 14) | (c >>> 18)) + d) | 0;
      b = (b + (d ^ (a & (c ^ d))) + m4 - 0x182c0438) | 0; b = (((b << 20) | (b >>> 12)) + c) | 0;
      a = (a + (c ^ (d & (b ^ c))) + m9 + 0x21e1cde6) | 0; a = (((a << 5) | (a >>> 27)) + b) | 0;
      d = (d + (b ^ (c & (a ^ b))) + m14 - 0x3cc8f82a) | 0; d = (((d << 9) | (d >>> 23)) + a) | 0;
      c = (c + (a ^ (b & (d ^ a))) + m3 - 0xb2af279) | 0; c = (((c << 14) | (c >>> 18)) + d) | 0;
      b = (b + (d ^ (a & (c ^ d))) + m8 + 0x455a14ed) | 0; b = (((b << 20) | (b >>> 12)) + c) | 0;
      a = (a + (c ^ (d & (b ^ c))) + m13 - 0x561c16fb) | 0; a = (((a << 5) | (a >>> 27)) + b) | 0;
      d = (d + (b ^ (c & (a ^ b))) + m2 - 0x3105c08) | 0; d = (((d << 9) | (d >>> 23)) + a) | 0;
      c = (c + (a ^ (b & (d ^ a))) + m7 + 0x676f02d9) | 0; c = (((c << 14) | (c >>> 18)) + d) | 0;
      b = (b + (d ^ (a & (c ^ d))) + m12 - 0x72d5b376) | 0; b = (((b << 20) | (b >>> 12)) + c) | 0;
      a = (a + (b ^ c ^ d) + m5 - 0x5c6be) | 0; a = (((a << 4) | (a >>> 28)) + b) | 0;
      d = (d + (a ^ b ^ c) + m8 - 0x788e097f) | 0; d = (((d << 11) | (d >>> 21)) + a) | 0;
      c = (c + (d ^ a ^ b) + m11 + 0x6d9d6122) | 0; c = (((c << 16) | (c >>> 16)) + d) | 0;
      b = (b + (c ^ d ^ a) + m14 - 0x21ac7f4) | 0; b = (((b << 23) | (b >>> 9)) + c) | 0;
      a = (a + (b ^ c ^ d) + m1 - 0x5b4115bc) | 0; a = (((a << 4) | (a >>> 28)) + b) | 0;
      d = (d + (a ^ b ^ c) + m4 + 0x4bdecfa9) | 0; d = (((d << 11) | (d >>> 21)) + a) | 0;
      c = (c + (d ^ a ^ b) + m7 - 0x944b4a0) | 0; c = (((c << 16) | (c >>> 16)) + d) | 0;
      b = (b + (c ^ d ^ a) + m10 - 0x41404390) | 0; b = (((b << 23) | (b >>> 9)) + c) | 0;
      a = (a + (b ^ c ^ d) + m13 + 0x289b7ec6) | 0; a = (((a << 4) | (a >>> 28)) + b) | 0;
      d = (d + (a ^ b ^ c) + m0 - 0x155ed806) | 0; d = (((d << 11) | (d >>> 21)) + a) | 0;
      c = (c + (d ^ a ^ b) + m3 - 0x2b10cf7b) | 0; c = (((c << 16) | (c >>> 16)) + d) | 0;
      b = (b + (c ^ d ^ a) + m6 + 0x4881d05) | 0; b = (((b << 23) | (b >>> 9)) + c) | 0;
      a = (a + (b ^ c ^ d) + m9 - 0x262b2fc7) | 0; a = (((a << 4) | (a >>> 28)) + b) | 0;
      d = (d + (a ^ b ^ c) + m12 - 0x1924661b) | 0; d = (((d << 11) | (d >>> 21)) + a) | 0;
      c = (c + (d ^ a ^ b) + m15 + 0x1fa27cf8) | 0; c = (((c << 16) | (c >>> 16)) + d) | 0;
      b = (b + (c ^ d ^ a) + m2 - 0x3b53a99b) | 0; b = (((b << 23) | (b >>> 9)) + c) | 0;
      a = (a + (c ^ (b | ~d)) + m0 - 0xbd6ddbc) | 0; a = (((a << 6) | (a >>> 26)) + b) | 0;
      d = (d + (b ^ (a | ~c)) + m7 + 0x432aff97) | 0; d = (((d << 10) | (d >>> 22)) + a) | 0;
      c = (c + (a ^ (d | ~b)) + m14 - 0x546bdc59) | 0; c = (((c << 15) | (c >>> 17)) + d) | 0;
      b = (b + (d ^ (c | ~a)) + m5 - 0x36c5fc7) | 0; b = (((b << 21) | (b >>> 11)) + c) | 0;
      a = (a + (c ^ (b | ~d)) + m12 + 0x655b59c3) | 0; a = (((a << 6) | (a >>> 26)) + b) | 0;
      d = (d + (b ^ (a | ~c)) + m3 - 0x70f3336e) | 0; d = (((d << 10) | (d >>> 22)) + a) | 0;
      c = (c + (a ^ (d | ~b)) + m10 - 0x100b83) | 0; c = (((c << 15) | (c >>> 17)) + d) | 0;
      b = (b + (d ^ (c | ~a)) + m1 - 0x7a7ba22f) | 0; b = (((b << 21) | (b >>> 11)) + c) | 0;
      a = (a + (c ^ (b | ~d)) + m8 + 0x6fa87e4f) | 0; a = (((a << 6) | (a >>> 26)) + b) | 0;
      d = (d + (b ^ (a | ~c)) + m15 - 0x1d31920) | 0; d = (((d << 10) | (d >>> 22)) + a) | 0;
      c = (c + (a ^ (d | ~b)) + m6 - 0x5cfebcec) | 0; c = (((c << 15) | (c >>> 17)) + d) | 0;
      b = (b + (d ^ (c | ~a)) + m13 + 0x4e0811a1) | 0; b = (((b << 21) | (b >>> 11)) + c) | 0;
      a = (a + (c ^ (b | ~d)) + m4 - 0x8ac817e) | 0; a = (((a << 6) | (a >>> 26)) + b) | 0;
      d = (d + (b ^ (a | ~c)) + m11 - 0x42c50dcb) | 0; d = (((d << 10) | (d >>> 22)) + a) | 0;
      c = (c + (a ^ (d | ~b)) + m2 + 0x2ad7d2bb) | 0; c = (((c << 15) | (c >>> 17)) + d) | 0;
      b = (b + (d ^ (c | ~a)) + m9 - 0x14792c6f) | 0; b = (((b << 21) | (b >>> 11)) + c) | 0;
    H0 = (H0 + a) | 0; H1 = (H1 + b) | 0; H2 = (H2 + c) | 0; H3 = (H3 + d) | 0;
  }

  function md5Core(bytes, len) {
    H0 = 0x67452301; H1 = 0xefcdab89 | 0; H2 = 0x98badcfe | 0; H3 = 0x10325476;
    const full = len - (len & 63);
    for (let o = 0; o < full; o += 64) md5Compress(bytes, o);
    const rem = len - full;
    const t = MD5_TAIL;
    for (let i = 0; i < rem; i++) t[i] = bytes[full + i];
    t[rem] = 0x80;
    const tl = rem < 56 ? 64 : 128;
    for (let i = rem + 1; i < tl - 8; i++) t[i] = 0;
    const lo = (len * 8) >>> 0;
    const hi = Math.floor(len / 0x20000000) >>> 0;
    t[tl - 8] = lo & 255; t[tl - 7] = (lo >>> 8) & 255; t[tl - 6] = (lo >>> 16) & 255; t[tl - 5] = lo >>> 24;
    t[tl - 4] = hi & 255; t[tl - 3] = (hi >>> 8) & 255; t[tl - 2] = (hi >>> 16) & 255; t[tl - 1] = hi >>> 24;
    md5Compress(t, 0);
    if (tl === 128) md5Compress(t, 64);
  }

  function hWrite(out, off) {
    out[off] = H0; out[off + 1] = H0 >>> 8; out[off + 2] = H0 >>> 16; out[off + 3] = H0 >>> 24;
    out[off + 4] = H1; out[off + 5] = H1 >>> 8; out[off + 6] = H1 >>> 16; out[off + 7] = H1 >>> 24;
    out[off + 8] = H2; out[off + 9] = H2 >>> 8; out[off + 10] = H2 >>> 16; out[off + 11] = H2 >>> 24;
    out[off + 12] = H3; out[off + 13] = H3 >>> 8; out[off + 14] = H3 >>> 16; out[off + 15] = H3 >>> 24;
  }

  function hSave() { const d = new Int32Array(4); d[0] = H0; d[1] = H1; d[2] = H2; d[3] = H3; return d; }

  function md5(bytes) {
    const b = toBytes(bytes);
    md5Core(b, b.length);
    const out = new Uint8Array(16);
    hWrite(out, 0);
    return out;
  }

  function wordHex(w) {
    return HEX2[w & 255] + HEX2[(w >>> 8) & 255] + HEX2[(w >>> 16) & 255] + HEX2[w >>> 24];
  }

  function md5hex(bytes) {
    const b = toBytes(bytes);
    md5Core(b, b.length);
    return wordHex(H0) + wordHex(H1) + wordHex(H2) + wordHex(H3);
  }

  /** md5 words of a string's UTF-8 bytes. */
  function digestStr(str) {
    const n = utf8Into(str);
    md5Core(UBUF, n);
    return hSave();
  }
  function digestBytes(b) {
    md5Core(b, b.length);
    return hSave();
  }

  // md5(md5(x)) tail, given md5(x) words: returns (byte14 << 8) | byte15.
  const D16 = new Uint8Array(16);
  function doubleTail(d) {
    H0 = d[0]; H1 = d[1]; H2 = d[2]; H3 = d[3];
    hWrite(D16, 0);
    md5Core(D16, 16);
    return (((H3 >>> 16) & 255) << 8) | ((H3 >>> 24) & 255);
  }

  const EMPTY_DIGEST = digestBytes(EMPTY);
  const EMPTY_TAIL = doubleTail(EMPTY_DIGEST); // == (69 << 8) | 63

  // ---------------------------------------------------------------------------------
  // RC4
  // ---------------------------------------------------------------------------------

  function rc4Schedule(key) {
    const S = new Uint8Array(256);
    for (let i = 0; i < 256; i++) S[i] = i;
    const kl = key.length;
    if (kl === 0) throw new Error('rc4: empty key');
    for (let i = 0, j = 0; i < 256; i++) {
      const t = S[i];
      j = (j + t + key[i % kl]) & 255;
      S[i] = S[j]; S[j] = t;
    }
    return S;
  }

  // Encrypts data[0..len) into out[outOff..]; S is consumed (mutated).
  function rc4Run(S, data, len, out, outOff) {
    let i = 0, j = 0;
    for (let k = 0; k < len; k++) {
      i = (i + 1) & 255;
      const t = S[i];
      j = (j + t) & 255;
      S[i] = S[j]; S[j] = t;
      out[outOff + k] = data[k] ^ S[(S[i] + t) & 255];
    }
  }

  const RC4_S255 = rc4Schedule([255]);
  const RC4_WORK = new Uint8Array(256);

  function rc4(keyBytes, dataBytes) {
    const key = toBytes(keyBytes);
    const data = toBytes(dataBytes);
    let S;
    if (key.length === 1 && key[0] === 255) { RC4_WORK.set(RC4_S255); S = RC4_WORK; }
    else S = rc4Schedule(key);
    const out = new Uint8Array(data.length);
    rc4Run(S, data, data.length, out, 0);
    return out;
  }

  // ---------------------------------------------------------------------------------
  // X-Bogus
  // ---------------------------------------------------------------------------------

  const XB_ALPHA = alphaCodes('Dkdpgh4ZKsQB80/Mfvw36XI1R25-WUAlEi7NLboqYTOPuzmFjJnryx9HVGcaStCe');

  // Per-UA caches: UA tail by (h1 << 8 | h2), and md5 words of the UTF-8 UA.
  const UA_TAIL_CACHE = new Map();
  const UA_DIGEST_CACHE = new Map();
  const CACHE_MAX = 256;

  function uaTail(ua, h1, h2) {
    let per = UA_TAIL_CACHE.get(ua);
    const hk = (h1 << 8) | h2;
    if (per !== undefined) {
      const hit = per.get(hk);
      if (hit !== undefined) return hit;
    } else {
      if (UA_TAIL_CACHE.size >= CACHE_MAX) UA_TAIL_CACHE.clear();
      per = new Map();
      UA_TAIL_CACHE.set(ua, per);
    }
    const n = ua.length;
    const raw = new Uint8Array(n);
    for (let i = 0; i < n; i++) raw[i] = ua.charCodeAt(i) & 0xff;
    const enc = new Uint8Array(n);
    rc4Run(rc4Schedule([0, h1, h2]), raw, n, enc, 0);
    const txt = b64enc(enc, n, B64_STD_C, true);
    const asc = new Uint8Array(txt.length);
    for (let i = 0; i < txt.length; i++) asc[i] = txt.charCodeAt(i);
    md5Core(asc, asc.length);
    const v = (((H3 >>> 16) & 255) << 8) | ((H3 >>> 24) & 255);
    per.set(hk, v);
    return v;
  }

  function uaDigest(ua) {
    const hit = UA_DIGEST_CACHE.get(ua);
    if (hit !== undefined) return hit;
    const d = digestStr(ua);
    if (UA_DIGEST_CACHE.size >= CACHE_MAX) UA_DIGEST_CACHE.clear();
    UA_DIGEST_CACHE.set(ua, d);
    return d;
  }

  function bodyDigest(body) {
    if (body == null) return EMPTY_DIGEST;
    if (typeof body === 'string') return body.length === 0 ? EMPTY_DIGEST : digestStr(body);
    const b = toBytes(body);
    return b.length === 0 ? EMPTY_DIGEST : digestBytes(b);
  }

  // Timestamp and canvas carried by an X-Bogus token (a vendor-made one, so that our
  // X-Gnarly can carry the same values, as real ones do). null when malformed.
  const XB_INDEX = (function () {
    const m = new Map();
    const a = 'Dkdpgh4ZKsQB80/Mfvw36XI1R25-WUAlEi7NLboqYTOPuzmFjJnryx9HVGcaStCe';
    for (let i = 0; i < a.length; i++) m.set(a[i], i);
    return m;
  })();

  function xbogusTimeCanvas(token) {
    if (typeof token !== 'string' || token.length !== 28) return null;
    const raw = new Uint8Array(21);
    for (let g = 0; g < 7; g++) {
      let n = 0;
      for (let k = 0; k < 4; k++) {
        const v = XB_INDEX.get(token[g * 4 + k]);
        if (v === undefined) return null;
        n = (n << 6) | v;
      }
      raw[g * 3] = (n >>> 16) & 255; raw[g * 3 + 1] = (n >>> 8) & 255; raw[g * 3 + 2] = n & 255;
    }
    if (raw[0] !== 2 || raw[1] !== 255) return null;
    const p = rc4([255], raw.subarray(2));
    const be = (o) => ((p[o] << 24) | (p[o + 1] << 16) | (p[o + 2] << 8) | p[o + 3]) >>> 0;
    return { timestamp: be(10), canvas: be(14) };
  }

  const XB_PAY = new Uint8Array(19);
  const XB_RAW = new Uint8Array(21);

  // Integer argument check: like the Python side, out-of-range values are errors,
  // never silently wrapped.
  function uint(x, max, what) {
    const v = typeof x === 'number' ? x : Number(x);
    if (!Number.isInteger(v) || v < 0 || v > max) throw new RangeError(what + ' must be an integer in 0..' + max);
    return v;
  }
  function u32(x, what) { return uint(x, 0xffffffff, what) >>> 0; }

  /** X-Bogus from md5 words of the query and of the body. */
  function xbogusFromDigests(qd, bd, ua, ts, canvas, h1, h2) {
    h1 &= 255; h2 &= 255;
    const qt = doubleTail(qd);
    const bt = bd === EMPTY_DIGEST ? EMPTY_TAIL : doubleTail(bd);
    const ut = uaTail(ua, h1, h2);
    const p = XB_PAY;
    p[0] = 64; p[1] = 0; p[2] = h1; p[3] = h2;
    p[4] = qt >>> 8; p[5] = qt & 255; p[6] = bt >>> 8; p[7] = bt & 255; p[8] = ut >>> 8; p[9] = ut & 255;
    p[10] = ts >>> 24; p[11] = ts >>> 16; p[12] = ts >>> 8; p[13] = ts;
    p[14] = canvas >>> 24; p[15] = canvas >>> 16; p[16] = canvas >>> 8; p[17] = canvas;
    let x = 0;
    for (let i = 0; i < 18; i++) x ^= p[i];
    p[18] = x;
    const r = XB_RAW;
    r[0] = 2; r[1] = 255;
    RC4_WORK.set(RC4_S255);
    rc4Run(RC4_WORK, p, 19, r, 2);
    return b64enc(r, 21, XB_ALPHA, false);
  }

  function xbogus(query, userAgent, timestamp, canvas, h1, h2, bodyBytes) {
    const q = String(query == null ? '' : query);
    const ua = String(userAgent == null ? '' : userAgent);
    return xbogusFromDigests(digestStr(q), bodyDigest(bodyBytes), ua,
      u32(timestamp, 'timestamp'), u32(canvas, 'canvas'), uint(h1, 255, 'h1'), uint(h2, 255, 'h2'));
  }

  // ---------------------------------------------------------------------------------
  // X-Gnarly
  // ---------------------------------------------------------------------------------

  const XG_ALPHA = alphaCodes('u09tbS3UvgDEe6r-ZVMXzLpsAohTn7mdINQlW412GqBjfYiyk8JORCF5/xKHwacP');
  const C0 = 1196819126 | 0, C1 = 600974999 | 0, C2 = 3863347763 | 0, C3 = 1451689750 | 0;

  let XG_PT = new Uint8Array(512);
  let XG_CT = new Uint8Array(512);
  let XG_OUT = new Uint8Array(600);
  const XG_KW = new Int32Array(12);

  // ct[0..len) = pt[0..len) XOR keystream(key words kw, rounds).
  function gnarlyCrypt(kw, rounds, pt, ct, len) {
    const k0 = kw[0], k1 = kw[1], k2 = kw[2], k3 = kw[3], k4 = kw[4], k5 = kw[5];
    const k6 = kw[6], k7 = kw[7], k8 = kw[8], k9 = kw[9], k10 = kw[10], k11 = kw[11];
    for (let n = 0, off = 0; off < len; n++, off += 64) {
      const s12 = (k8 + n) | 0;
      let x0 = C0, x1 = C1, x2 = C2, x3 = C3, x4 = k0, x5 = k1, x6 = k2, x7 = k3;
      let x8 = k4, x9 = k5, x10 = k6, x11 = k7, x12 = s12, x13 = k9, x14 = k10, x15 = k11;
      for (let r = 0; r < rounds; r++) {
        if ((r & 1) === 0) {
          // column round
          x0 = (x0 + x4) | 0; x12 ^= x0; x12 = (x12 << 16) | (x12 >>> 16);
          x8 = (x8 + x12) | 0; x4 ^= x8; x4 = (x4 << 12) | (x4 >>> 20);
          x0 = (x0 + x4) | 0; x12 ^= x0; x12 = (x12 << 8) | (x12 >>> 24);
          x8 = (x8 + x12) | 0; x4 ^= x8; x4 = (x4 << 7) | (x4 >>> 25);
          x1 = (x1 + x5) | 0; x13 ^= x1; x13 = (x13 << 16) | (x13 >>> 16);
          x9 = (x9 + x13) | 0; x5 ^= x9; x5 = (x5 << 12) | (x5 >>> 20);
          x1 = (x1 + x5) | 0; x13 ^= x1; x13 = (x13 << 8) | (x13 >>> 24);
          x9 = (x9 + x13) | 0; x5 ^= x9; x5 = (x5 << 7) | (x5 >>> 25);
          x2 = (x2 + x6) | 0; x14 ^= x2; x14 = (x14 << 16) | (x14 >>> 16);
          x10 = (x10 + x14) | 0; x6 ^= x10; x6 = (x6 << 12) | (x6 >>> 20);
          x2 = (x2 + x6) | 0; x14 ^= x2; x14 = (x14 << 8) | (x14 >>> 24);
          x10 = (x10 + x14) | 0; x6 ^= x10; x6 = (x6 << 7) | (x6 >>> 25);
          x3 = (x3 + x7) | 0; x15 ^= x3; x15 = (x15 << 16) | (x15 >>> 16);
          x11 = (x11 + x15) | 0; x7 ^= x11; x7 = (x7 << 12) | (x7 >>> 20);
          x3 = (x3 + x7) | 0; x15 ^= x3; x15 = (x15 << 8) | (x15 >>> 24);
          x11 = (x11 + x15) | 0; x7 ^= x11; x7 = (x7 << 7) | (x7 >>> 25);
        } else {
          // diagonal round (non-standard pairing)
          x0 = (x0 + x5) | 0; x15 ^= x0; x15 = (x15 << 16) | (x15 >>> 16);
          x10 = (x10 + x15) | 0; x5 ^= x10; x5 = (x5 << 12) | (x5 >>> 20);
          x0 = (x0 + x5) | 0; x15 ^= x0; x15 = (x15 << 8) | (x15 >>> 24);
          x10 = (x10 + x15) | 0; x5 ^= x10; x5 = (x5 << 7) | (x5 >>> 25);
          x1 = (x1 + x6) | 0; x12 ^= x1; x12 = (x12 << 16) | (x12 >>> 16);
          x11 = (x11 + x12) | 0; x6 ^= x11; x6 = (x6 << 12) | (x6 >>> 20);
          x1 = (x1 + x6) | 0; x12 ^= x1; x12 = (x12 << 8) | (x12 >>> 24);
          x11 = (x11 + x12) | 0; x6 ^= x11; x6 = (x6 << 7) | (x6 >>> 25);
          x2 = (x2 + x7) | 0; x13 ^= x2; x13 = (x13 << 16) | (x13 >>> 16);
          x12 = (x12 + x13) | 0; x7 ^= x12; x7 = (x7 << 12) | (x7 >>> 20);
          x2 = (x2 + x7) | 0; x13 ^= x2; x13 = (x13 << 8) | (x13 >>> 24);
          x12 = (x12 + x13) | 0; x7 ^= x12; x7 = (x7 << 7) | (x7 >>> 25);
          x3 = (x3 + x4) | 0; x14 ^= x3; x14 = (x14 << 16) | (x14 >>> 16);
          x13 = (x13 + x14) | 0; x4 ^= x13; x4 = (x4 << 12) | (x4 >>> 20);
          x3 = (x3 + x4) | 0; x14 ^= x3; x14 = (x14 << 8) | (x14 >>> 24);
          x13 = (x13 + x14) | 0; x4 ^= x13; x4 = (x4 << 7) | (x4 >>> 25);
        }
      }
      x0 = (x0 + C0) | 0; x1 = (x1 + C1) | 0; x2 = (x2 + C2) | 0; x3 = (x3 + C3) | 0;
      x4 = (x4 + k0) | 0; x5 = (x5 + k1) | 0; x6 = (x6 + k2) | 0; x7 = (x7 + k3) | 0;
      x8 = (x8 + k4) | 0; x9 = (x9 + k5) | 0; x10 = (x10 + k6) | 0; x11 = (x11 + k7) | 0;
      x12 = (x12 + s12) | 0; x13 = (x13 + k9) | 0; x14 = (x14 + k10) | 0; x15 = (x15 + k11) | 0;
      const end = len - off < 64 ? len - off : 64;
      if (end === 64) {
        xorWord(pt, ct, off, x0); xorWord(pt, ct, off + 4, x1); xorWord(pt, ct, off + 8, x2); xorWord(pt, ct, off + 12, x3);
        xorWord(pt, ct, off + 16, x4); xorWord(pt, ct, off + 20, x5); xorWord(pt, ct, off + 24, x6); xorWord(pt, ct, off + 28, x7);
        xorWord(pt, ct, off + 32, x8); xorWord(pt, ct, off + 36, x9); xorWord(pt, ct, off + 40, x10); xorWord(pt, ct, off + 44, x11);
        xorWord(pt, ct, off + 48, x12); xorWord(pt, ct, off + 52, x13); xorWord(pt, ct, off + 56, x14); xorWord(pt, ct, off + 60, x15);
      } else {
        const ks = [x0, x1, x2, x3, x4, x5, x6, x7, x8, x9, x10, x11, x12, x13, x14, x15];
        for (let i = 0; i < end; i++) ct[off + i] = pt[off + i] ^ ((ks[i >>> 2] >>> ((i & 3) << 3)) & 255);
      }
    }
  }

  function xorWord(pt, ct, o, w) {
    ct[o] = pt[o] ^ (w & 255);
    ct[o + 1] = pt[o + 1] ^ ((w >>> 8) & 255);
    ct[o + 2] = pt[o + 2] ^ ((w >>> 16) & 255);
    ct[o + 3] = pt[o + 3] ^ (w >>> 24);
  }

  // TLV writers over XG_PT; each returns the new offset.
  function tlvInt(b, p, key, width, v) {
    b[p] = key; b[p + 1] = 0; b[p + 2] = width;
    if (width === 2) { b[p + 3] = (v >>> 8) & 255; b[p + 4] = v & 255; return p + 5; }
    b[p + 3] = v >>> 24; b[p + 4] = (v >>> 16) & 255; b[p + 5] = (v >>> 8) & 255; b[p + 6] = v & 255;
    return p + 7;
  }
  function tlvHex(b, p, key, d) {
    b[p] = key; b[p + 1] = 0; b[p + 2] = 32;
    p += 3;
    for (let w = 0; w < 4; w++) {
      const x = d[w];
      for (let s = 0; s < 32; s += 8) {
        const byte = (x >>> s) & 255;
        b[p++] = HEXC[byte >>> 4];
        b[p++] = HEXC[byte & 15];
      }
    }
    return p;
  }
  function tlvBytes(b, p, key, bytes) {
    const n = bytes.length;
    b[p] = key; b[p + 1] = (n >>> 8) & 255; b[p + 2] = n & 255;
    b.set(bytes, p + 3);
    return p + 3 + n;
  }

  const STR_BYTES_CACHE = new Map();
  function cachedUtf8(s) {
    let b = STR_BYTES_CACHE.get(s);
    if (b === undefined) {
      b = utf8(s);
      if (b.length > 0xffff) throw new Error('string field too long');
      if (STR_BYTES_CACHE.size >= 64) STR_BYTES_CACHE.clear();
      STR_BYTES_CACHE.set(s, b);
    }
    return b;
  }

  /** X-Gnarly from md5 words of query / body / UA. */
  function xgnarlyFromDigests(qd, bd, ud, ts, canvas, opts) {
    const o = opts || {};
    // Randomness (injectable for tests).
    let key;
    if (o.key != null) {
      key = toBytes(o.key);
      if (key.length !== 48) throw new Error('X-Gnarly key must be 48 bytes');
    } else key = randBytes(48);
    const counter = o.counter != null ? uint(o.counter, 0x7fffffff, 'counter') : (Date.now() & 0x7fffffff);
    const r16 = o.random16 != null ? uint(o.random16, 0xffff, 'random16') : randU16();
    const r32 = o.random32 != null ? u32(o.random32, 'random32') : randU32();
    const field2 = o.field2 != null ? uint(o.field2, 0xffff, 'field2') : 14;
    const seen = o.requestsSeen != null ? uint(o.requestsSeen, 0xffff, 'requestsSeen') : 1;
    const icpt = o.requestsIntercepted != null ? uint(o.requestsIntercepted, 0xffff, 'requestsIntercepted') : 0;
    const tag = cachedUtf8(o.sdkTag != null ? String(o.sdkTag) : '5.1.3-ZTCA');
    const ver = cachedUtf8(o.sdkVersion != null ? String(o.sdkVersion) : '2.0.0.485');
    const f14 = ((65 << 16) | r16) >>> 0;

    // Plaintext: [16] + TLVs in order 1..15, 0.
    const need = 1 + 16 * 3 + 2 + 2 + 96 + 4 * 8 + 2 * 3 + tag.length + ver.length + 8;
    if (need > XG_PT.length) {
      XG_PT = new Uint8Array(need + 256);
      XG_CT = new Uint8Array(need + 256);
      XG_OUT = new Uint8Array(need + 256 + 49);
    }
    const b = XG_PT;
    let p = 0;
    b[p++] = 16;
    p = tlvInt(b, p, 1, 2, 65);
    p = tlvInt(b, p, 2, 2, field2);
    p = tlvHex(b, p, 3, qd);
    p = tlvHex(b, p, 4, bd);
    p = tlvHex(b, p, 5, ud);
    p = tlvInt(b, p, 6, 4, ts);
    p = tlvInt(b, p, 7, 4, canvas);
    p = tlvInt(b, p, 8, 4, counter);
    p = tlvBytes(b, p, 9, tag);
    p = tlvBytes(b, p, 10, ver);
    p = tlvInt(b, p, 11, 2, 1);
    p = tlvInt(b, p, 12, 2, seen);
    p = tlvInt(b, p, 13, 2, icpt);
    p = tlvInt(b, p, 14, 4, f14);
    p = tlvInt(b, p, 15, 4, r32);
    const chk = (65 ^ field2 ^ ts ^ canvas ^ counter ^ 1 ^ seen ^ icpt ^ f14 ^ r32) >>> 0;
    p = tlvInt(b, p, 0, 4, chk);
    const len = p;

    // Key words (little-endian) and rounds.
    const kw = XG_KW;
    let nib = 0, ksum = 0;
    for (let i = 0; i < 12; i++) {
      const j = i * 4;
      const w = key[j] | (key[j + 1] << 8) | (key[j + 2] << 16) | (key[j + 3] << 24);
      kw[i] = w;
      nib += w & 15;
    }
    for (let i = 0; i < 48; i++) ksum += key[i];
    const rounds = 5 + (nib % 16);

    const ct = XG_CT;
    gnarlyCrypt(kw, rounds, b, ct, len);
    let sum = ksum;
    for (let i = 0; i < len; i++) sum += ct[i];
    const ins = sum % (len + 1);

    const out = XG_OUT;
    out[0] = 75;
    out.set(ct.subarray(0, ins), 1);
    out.set(key, 1 + ins);
    out.set(ct.subarray(ins, len), 49 + ins);
    return b64enc(out, len + 49, XG_ALPHA, true);
  }

  function xgnarly(query, userAgent, timestamp, canvas, bodyBytes, opts) {
    const q = String(query == null ? '' : query);
    const ua = String(userAgent == null ? '' : userAgent);
    return xgnarlyFromDigests(digestStr(q), bodyDigest(bodyBytes), uaDigest(ua),
      u32(timestamp, 'timestamp'), u32(canvas, 'canvas'), opts);
  }

  // ---------------------------------------------------------------------------------
  // x-tt-params: AES-128-CBC, key = iv = "webapp1.0+202106", PKCS7, base64 std.
  // crypto.subtle when present; a small table-driven AES-128 encryptor (our own) is the
  // fallback for contexts without subtle (insecure origins) and the sync variant.
  // ---------------------------------------------------------------------------------

  const TT_KEY = utf8('webapp1.0+202106');
  let TT_KEY_PROMISE = null;

  function ttPlain(query) {
    const q = String(query == null ? '' : query);
    return q.length ? q + '&is_encryption=1' : 'is_encryption=1';
  }

  function subtleKey() {
    if (!TT_KEY_PROMISE) {
      TT_KEY_PROMISE = SUBTLE.importKey('raw', TT_KEY, { name: 'AES-CBC' }, false, ['encrypt']);
      TT_KEY_PROMISE.catch(function () { TT_KEY_PROMISE = null; });
    }
    return TT_KEY_PROMISE;
  }

  async function xttparams(query) {
    const pt = utf8(ttPlain(query));
    if (!SUBTLE) return aesCbcB64(pt);
    let ct;
    try {
      const key = await subtleKey();
      ct = new Uint8Array(await SUBTLE.encrypt({ name: 'AES-CBC', iv: TT_KEY }, key, pt));
    } catch (e) {
      return aesCbcB64(pt); // same bytes, computed in JS
    }
    return b64enc(ct, ct.length, B64_STD_C, true);
  }

  function xttparamsSync(query) {
    return aesCbcB64(utf8(ttPlain(query)));
  }

  // AES tables: S-box from GF(2^8) inverses (generator 3) + affine map.
  const SBOX = new Uint8Array(256);
  const TE0 = new Int32Array(256), TE1 = new Int32Array(256), TE2 = new Int32Array(256), TE3 = new Int32Array(256);
  (function buildAes() {
    const exp = new Uint8Array(256), log = new Uint8Array(256);
    let x = 1;
    for (let i = 0; i < 255; i++) {
      exp[i] = x; log[x] = i;
      x ^= (x << 1) ^ (x & 0x80 ? 0x11b : 0); // x *= 3
      x &= 255;
    }
    for (let i = 0; i < 256; i++) {
      const inv = i === 0 ? 0 : exp[(255 - log[i]) % 255];
      let s = inv;
      for (let k = 1; k <= 4; k++) s ^= ((inv << k) | (inv >>> (8 - k))) & 255;
      SBOX[i] = s ^ 0x63;
    }
    for (let i = 0; i < 256; i++) {
      const s = SBOX[i];
      const s2 = ((s << 1) ^ (s & 0x80 ? 0x11b : 0)) & 255;
      const s3 = s2 ^ s;
      const t = (s2 << 24) | (s << 16) | (s << 8) | s3;
      TE0[i] = t;
      TE1[i] = (t >>> 8) | (t << 24);
      TE2[i] = (t >>> 16) | (t << 16);
      TE3[i] = (t >>> 24) | (t << 8);
    }
  })();

  const TT_RK = (function expand(key) {
    const w = new Int32Array(44);
    for (let i = 0; i < 4; i++) w[i] = (key[4 * i] << 24) | (key[4 * i + 1] << 16) | (key[4 * i + 2] << 8) | key[4 * i + 3];
    let rcon = 1;
    for (let i = 4; i < 44; i++) {
      let t = w[i - 1];
      if ((i & 3) === 0) {
        t = (SBOX[(t >>> 16) & 255] << 24) | (SBOX[(t >>> 8) & 255] << 16) | (SBOX[t & 255] << 8) | SBOX[t >>> 24];
        t ^= rcon << 24;
        rcon = ((rcon << 1) ^ (rcon & 0x80 ? 0x11b : 0)) & 255;
      }
      w[i] = w[i - 4] ^ t;
    }
    return w;
  })(TT_KEY);

  function aesCbcB64(pt) {
    const n = pt.length;
    const padLen = 16 - (n % 16);
    const total = n + padLen;
    const buf = new Uint8Array(total);
    buf.set(pt);
    buf.fill(padLen, n);
    const rk = TT_RK;
    const iv = TT_KEY;
    let c0 = (iv[0] << 24) | (iv[1] << 16) | (iv[2] << 8) | iv[3];
    let c1 = (iv[4] << 24) | (iv[5] << 16) | (iv[6] << 8) | iv[7];
    let c2 = (iv[8] << 24) | (iv[9] << 16) | (iv[10] << 8) | iv[11];
    let c3 = (iv[12] << 24) | (iv[13] << 16) | (iv[14] << 8) | iv[15];
    for (let o = 0; o < total; o += 16) {
      let t0 = 0, t1 = 0, t2 = 0, t3 = 0;
      let s0 = ((buf[o] << 24) | (buf[o + 1] << 16) | (buf[o + 2] << 8) | buf[o + 3]) ^ c0 ^ rk[0];
      let s1 = ((buf[o + 4] << 24) | (buf[o + 5] << 16) | (buf[o + 6] << 8) | buf[o + 7]) ^ c1 ^ rk[1];
      let s2 = ((buf[o + 8] << 24) | (buf[o + 9] << 16) | (buf[o + 10] << 8) | buf[o + 11]) ^ c2 ^ rk[2];
      let s3 = ((buf[o + 12] << 24) | (buf[o + 13] << 16) | (buf[o + 14] << 8) | buf[o + 15]) ^ c3 ^ rk[3];
      // rounds 1..9 unrolled (s -> t -> s ...; round 9 leaves the state in t)
      t0 = TE0[s0 >>> 24] ^ TE1[(s1 >>> 16) & 255] ^ TE2[(s2 >>> 8) & 255] ^ TE3[s3 & 255] ^ rk[4];
      t1 = TE0[s1 >>> 24] ^ TE1[(s2 >>> 16) & 255] ^ TE2[(s3 >>> 8) & 255] ^ TE3[s0 & 255] ^ rk[5];
      t2 = TE0[s2 >>> 24] ^ TE1[(s3 >>> 16) & 255] ^ TE2[(s0 >>> 8) & 255] ^ TE3[s1 & 255] ^ rk[6];
      t3 = TE0[s3 >>> 24] ^ TE1[(s0 >>> 16) & 255] ^ TE2[(s1 >>> 8) & 255] ^ TE3[s2 & 255] ^ rk[7];
      s0 = TE0[t0 >>> 24] ^ TE1[(t1 >>> 16) & 255] ^ TE2[(t2 >>> 8) & 255] ^ TE3[t3 & 255] ^ rk[8];
      s1 = TE0[t1 >>> 24] ^ TE1[(t2 >>> 16) & 255] ^ TE2[(t3 >>> 8) & 255] ^ TE3[t0 & 255] ^ rk[9];
      s2 = TE0[t2 >>> 24] ^ TE1[(t3 >>> 16) & 255] ^ TE2[(t0 >>> 8) & 255] ^ TE3[t1 & 255] ^ rk[10];
      s3 = TE0[t3 >>> 24] ^ TE1[(t0 >>> 16) & 255] ^ TE2[(t1 >>> 8) & 255] ^ TE3[t2 & 255] ^ rk[11];
      t0 = TE0[s0 >>> 24] ^ TE1[(s1 >>> 16) & 255] ^ TE2[(s2 >>> 8) & 255] ^ TE3[s3 & 255] ^ rk[12];
      t1 = TE0[s1 >>> 24] ^ TE1[(s2 >>> 16) & 255] ^ TE2[(s3 >>> 8) & 255] ^ TE3[s0 & 255] ^ rk[13];
      t2 = TE0[s2 >>> 24] ^ TE1[(s3 >>> 16) & 255] ^ TE2[(s0 >>> 8) & 255] ^ TE3[s1 & 255] ^ rk[14];
      t3 = TE0[s3 >>> 24] ^ TE1[(s0 >>> 16) & 255] ^ TE2[(s1 >>> 8) & 255] ^ TE3[s2 & 255] ^ rk[15];
      s0 = TE0[t0 >>> 24] ^ TE1[(t1 >>> 16) & 255] ^ TE2[(t2 >>> 8) & 255] ^ TE3[t3 & 255] ^ rk[16];
      s1 = TE0[t1 >>> 24] ^ TE1[(t2 >>> 16) & 255] ^ TE2[(t3 >>> 8) & 255] ^ TE3[t0 & 255] ^ rk[17];
      s2 = TE0[t2 >>> 24] ^ TE1[(t3 >>> 16) & 255] ^ TE2[(t0 >>> 8) & 255] ^ TE3[t1 & 255] ^ rk[18];
      s3 = TE0[t3 >>> 24] ^ TE1[(t0 >>> 16) & 255] ^ TE2[(t1 >>> 8) & 255] ^ TE3[t2 & 255] ^ rk[19];
      t0 = TE0[s0 >>> 24] ^ TE1[(s1 >>> 16) & 255] ^ TE2[(s2 >>> 8) & 255] ^ TE3[s3 & 255] ^ rk[20];
      t1 = TE0[s1 >>> 24] ^ TE1[(s2 >>> 16) & 255] ^ TE2[(s3 >>> 8) & 255] ^ TE3[s0 & 255] ^ rk[21];
      t2 = TE0[s2 >>> 24] ^ TE1[(s3 >>> 16) & 255] ^ TE2[(s0 >>> 8) & 255] ^ TE3[s1 & 255] ^ rk[22];
      t3 = TE0[s3 >>> 24] ^ TE1[(s0 >>> 16) & 255] ^ TE2[(s1 >>> 8) & 255] ^ TE3[s2 & 255] ^ rk[23];
      s0 = TE0[t0 >>> 24] ^ TE1[(t1 >>> 16) & 255] ^ TE2[(t2 >>> 8) & 255] ^ TE3[t3 & 255] ^ rk[24];
      s1 = TE0[t1 >>> 24] ^ TE1[(t2 >>> 16) & 255] ^ TE2[(t3 >>> 8) & 255] ^ TE3[t0 & 255] ^ rk[25];
      s2 = TE0[t2 >>> 24] ^ TE1[(t3 >>> 16) & 255] ^ TE2[(t0 >>> 8) & 255] ^ TE3[t1 & 255] ^ rk[26];
      s3 = TE0[t3 >>> 24] ^ TE1[(t0 >>> 16) & 255] ^ TE2[(t1 >>> 8) & 255] ^ TE3[t2 & 255] ^ rk[27];
      t0 = TE0[s0 >>> 24] ^ TE1[(s1 >>> 16) & 255] ^ TE2[(s2 >>> 8) & 255] ^ TE3[s3 & 255] ^ rk[28];
      t1 = TE0[s1 >>> 24] ^ TE1[(s2 >>> 16) & 255] ^ TE2[(s3 >>> 8) & 255] ^ TE3[s0 & 255] ^ rk[29];
      t2 = TE0[s2 >>> 24] ^ TE1[(s3 >>> 16) & 255] ^ TE2[(s0 >>> 8) & 255] ^ TE3[s1 & 255] ^ rk[30];
      t3 = TE0[s3 >>> 24] ^ TE1[(s0 >>> 16) & 255] ^ TE2[(s1 >>> 8) & 255] ^ TE3[s2 & 255] ^ rk[31];
      s0 = TE0[t0 >>> 24] ^ TE1[(t1 >>> 16) & 255] ^ TE2[(t2 >>> 8) & 255] ^ TE3[t3 & 255] ^ rk[32];
      s1 = TE0[t1 >>> 24] ^ TE1[(t2 >>> 16) & 255] ^ TE2[(t3 >>> 8) & 255] ^ TE3[t0 & 255] ^ rk[33];
      s2 = TE0[t2 >>> 24] ^ TE1[(t3 >>> 16) & 255] ^ TE2[(t0 >>> 8) & 255] ^ TE3[t1 & 255] ^ rk[34];
      s3 = TE0[t3 >>> 24] ^ TE1[(t0 >>> 16) & 255] ^ TE2[(t1 >>> 8) & 255] ^ TE3[t2 & 255] ^ rk[35];
      t0 = TE0[s0 >>> 24] ^ TE1[(s1 >>> 16) & 255] ^ TE2[(s2 >>> 8) & 255] ^ TE3[s3 & 255] ^ rk[36];
      t1 = TE0[s1 >>> 24] ^ TE1[(s2 >>> 16) & 255] ^ TE2[(s3 >>> 8) & 255] ^ TE3[s0 & 255] ^ rk[37];
      t2 = TE0[s2 >>> 24] ^ TE1[(s3 >>> 16) & 255] ^ TE2[(s0 >>> 8) & 255] ^ TE3[s1 & 255] ^ rk[38];
      t3 = TE0[s3 >>> 24] ^ TE1[(s0 >>> 16) & 255] ^ TE2[(s1 >>> 8) & 255] ^ TE3[s2 & 255] ^ rk[39];
      c0 = ((SBOX[t0 >>> 24] << 24) | (SBOX[(t1 >>> 16) & 255] << 16) | (SBOX[(t2 >>> 8) & 255] << 8) | SBOX[t3 & 255]) ^ rk[40];
      c1 = ((SBOX[t1 >>> 24] << 24) | (SBOX[(t2 >>> 16) & 255] << 16) | (SBOX[(t3 >>> 8) & 255] << 8) | SBOX[t0 & 255]) ^ rk[41];
      c2 = ((SBOX[t2 >>> 24] << 24) | (SBOX[(t3 >>> 16) & 255] << 16) | (SBOX[(t0 >>> 8) & 255] << 8) | SBOX[t1 & 255]) ^ rk[42];
      c3 = ((SBOX[t3 >>> 24] << 24) | (SBOX[(t0 >>> 16) & 255] << 16) | (SBOX[(t1 >>> 8) & 255] << 8) | SBOX[t2 & 255]) ^ rk[43];
      buf[o] = c0 >>> 24; buf[o + 1] = c0 >>> 16; buf[o + 2] = c0 >>> 8; buf[o + 3] = c0;
      buf[o + 4] = c1 >>> 24; buf[o + 5] = c1 >>> 16; buf[o + 6] = c1 >>> 8; buf[o + 7] = c1;
      buf[o + 8] = c2 >>> 24; buf[o + 9] = c2 >>> 16; buf[o + 10] = c2 >>> 8; buf[o + 11] = c2;
      buf[o + 12] = c3 >>> 24; buf[o + 13] = c3 >>> 16; buf[o + 14] = c3 >>> 8; buf[o + 15] = c3;
    }
    return b64enc(buf, total, B64_STD_C, true);
  }

  // ---------------------------------------------------------------------------------
  // verifyFp
  // ---------------------------------------------------------------------------------

  const FP_CHARS = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
  const FP_VARIANT = '89AB';

  function fpChar() {
    for (;;) {
      const v = randByte();
      if (v < 248) return FP_CHARS[v % 62]; // 248 = 4 * 62: unbiased
    }
  }

  function verifyFp(nowMs) {
    const ms = nowMs == null ? Date.now() : Math.floor(Number(nowMs));
    if (!Number.isFinite(ms) || ms < 0) throw new TypeError('verifyFp: bad time');
    let s = '';
    for (let i = 0; i < 36; i++) {
      if (i === 8 || i === 13 || i === 18 || i === 23) s += '_';
      else if (i === 14) s += '4';
      else if (i === 19) s += FP_VARIANT[randByte() & 3];
      else s += fpChar();
    }
    return 'verify_' + ms.toString(36) + '_' + s;
  }

  // ---------------------------------------------------------------------------------
  // Browser part
  // ---------------------------------------------------------------------------------

  // Short mixed CJK / Thai / Korean sample (our own choice of characters).
  const CANVAS_TEXT = '\u8bd5\u5199\u0e2a\u0e27\u0e31\u0e2a\ud55c\uae00\u5b57';

  function canvasFingerprint(variant) {
    const v = variant && typeof variant === 'object' ? variant : {};
    if (typeof document === 'undefined' || !document || typeof document.createElement !== 'function') {
      throw new Error('canvasFingerprint needs a browser document');
    }
    const cv = document.createElement('canvas');
    cv.width = 48;
    cv.height = 16;
    const ctx = cv.getContext('2d');
    if (!ctx) throw new Error('2d canvas context unavailable');
    ctx.textBaseline = 'top';
    ctx.font = typeof v.font === 'string' && v.font ? v.font : '14px Arial';
    ctx.fillStyle = typeof v.fillStyle === 'string' && v.fillStyle ? v.fillStyle : '#f60';
    ctx.fillText(typeof v.text === 'string' && v.text ? v.text : CANVAS_TEXT, 2, 2);
    const url = cv.toDataURL();
    let a = 0xdeadbeef;
    for (let i = 0; i < url.length; i++) a = (Math.imul(a, 65599) + url.charCodeAt(i)) >>> 0;
    return a;
  }

  function navigatorData() {
    const nav = typeof navigator !== 'undefined' ? navigator : null;
    const scr = typeof screen !== 'undefined' ? screen : null;
    let tz = null;
    try { tz = Intl.DateTimeFormat().resolvedOptions().timeZone || null; } catch (e) { tz = null; }
    let brands = [];
    try {
      if (nav && nav.userAgentData && Array.isArray(nav.userAgentData.brands)) {
        brands = nav.userAgentData.brands.map(function (b) { return b.brand + '/' + b.version; });
      }
    } catch (e) { brands = []; }
    return {
      user_agent: nav ? nav.userAgent : null,
      platform: nav && nav.platform !== undefined ? nav.platform : null,
      language: nav && nav.language !== undefined ? nav.language : null,
      languages: nav && nav.languages ? Array.from(nav.languages) : [],
      device_scale_factor: typeof devicePixelRatio !== 'undefined' ? devicePixelRatio : null,
      screen_width: scr ? scr.width : null,
      screen_height: scr ? scr.height : null,
      timezone: tz,
      webdriver: nav ? nav.webdriver === true : false,
      hardware_concurrency: nav && nav.hardwareConcurrency !== undefined ? nav.hardwareConcurrency : null,
      cookie_enabled: nav && nav.cookieEnabled !== undefined ? nav.cookieEnabled : null,
      ua_brands: brands,
    };
  }

  // Per-context state.
  const ST = {
    profileId: null,
    h1: 65,
    h2: 14,
    canvas: null,
    canvasVariant: null,
    sdkTag: '5.1.3-ZTCA',
    sdkVersion: '2.0.0.485',
    vendor: false,
    seen: 0,
  };

  function parseHeader(h) {
    if (!h || h.length !== 2) throw new TypeError('header must be [h1, h2]');
    const a = Number(h[0]), b = Number(h[1]);
    if (!(a >= 0 && a <= 255 && b >= 0 && b <= 255) || (a | 0) !== a || (b | 0) !== b) {
      throw new TypeError('header bytes must be integers 0..255');
    }
    return [a, b];
  }

  function init(config) {
    const c = config || {};
    const hd = c.header != null ? parseHeader(c.header) : [65, 14];
    let canvas;
    if (c.canvas != null) canvas = u32(c.canvas, 'canvas'); // explicit override (tests / Node)
    else canvas = canvasFingerprint(c.canvasVariant);
    ST.profileId = c.profileId != null ? c.profileId : null;
    ST.h1 = hd[0];
    ST.h2 = hd[1];
    ST.canvas = canvas;
    ST.canvasVariant = c.canvasVariant || null;
    ST.sdkTag = c.sdkTag != null ? String(c.sdkTag) : '5.1.3-ZTCA';
    ST.sdkVersion = c.sdkVersion != null ? String(c.sdkVersion) : '2.0.0.485';
    ST.vendor = c.vendor === true;
    ST.seen = 0;
    return { canvas: canvas, navigator: navigatorData() };
  }

  const MS_SAFE = /^[A-Za-z0-9_\-=.]*$/;

  function vendorApi() {
    const v = G.byted_acrawler;
    return v && typeof v.frontierSign === 'function' ? v : null;
  }

  function fullUrl(url, q) {
    const s = String(url);
    const cut = s.indexOf('?');
    return (cut >= 0 ? s.slice(0, cut) : s) + '?' + q;
  }

  function signOne(it) {
    if (!it || typeof it !== 'object') throw new TypeError('item must be an object');
    const base = it.query == null ? '' : String(it.query);

    let ua = it.userAgent;
    if (ua == null) ua = typeof navigator !== 'undefined' && navigator ? navigator.userAgent : null;
    if (typeof ua !== 'string') throw new Error('no user agent');

    const ts = it.timestamp != null ? u32(it.timestamp, 'timestamp') : Math.floor(Date.now() / 1000) >>> 0;
    const cvs = it.canvas != null ? u32(it.canvas, 'canvas') : ST.canvas;
    if (cvs == null) throw new Error('canvas not initialised: call init() first');
    const hd = it.header != null ? parseHeader(it.header) : [ST.h1, ST.h2];

    // Body: bodyBase64 (binary) wins over body (text).
    let bd;
    if (it.bodyBase64 != null) {
      const raw = b64decode(String(it.bodyBase64));
      bd = raw.length ? digestBytes(raw) : EMPTY_DIGEST;
    } else bd = bodyDigest(it.body == null ? '' : String(it.body));

    // Final query: query [& verifyFp=fp] & msToken=tok
    let fp = '';
    if (it.includeVerifyFp !== false) fp = it.verifyFp == null ? verifyFp(Date.now()) : String(it.verifyFp);
    let tok = it.msToken == null ? '' : String(it.msToken);
    if (!MS_SAFE.test(tok)) tok = encodeURIComponent(tok);
    let q = base;
    if (fp) q = (q ? q + '&' : '') + 'verifyFp=' + fp;
    q = (q ? q + '&' : '') + 'msToken=' + tok;

    const qd = digestStr(q);
    // 1-based count of requests signed in this context, mod 65536; committed only
    // when the item signs successfully.
    const seen = (ST.seen + 1) & 0xffff;

    let xb = null, engine = 'bundle', signature = '';
    // TikTok's SDK signs for the page's own User-Agent only; a caller's UA keeps ours.
    const pageUa = typeof navigator !== 'undefined' && navigator ? navigator.userAgent : null;
    const vend = ST.vendor && ua === pageUa ? vendorApi() : null;
    if (vend) {
      try {
        const r = vend.frontierSign(it.url != null ? fullUrl(it.url, q) : q);
        const v = r && r['X-Bogus'];
        if (typeof v === 'string' && v) { xb = v; engine = 'vendor'; }
      } catch (e) { /* fall back to the bundle */ }
      if (it.url != null && typeof vend.sign === 'function') {
        try {
          const s = vend.sign({ url: fullUrl(it.url, q) });
          signature = s == null ? '' : String(s);
        } catch (e) { signature = ''; }
      }
    }
    let gts = ts, gcv = cvs;
    if (xb === null) xb = xbogusFromDigests(qd, bd, ua, ts, cvs, hd[0], hd[1]);
    else {
      const carried = xbogusTimeCanvas(xb);
      if (carried === null) { xb = xbogusFromDigests(qd, bd, ua, ts, cvs, hd[0], hd[1]); engine = 'bundle'; }
      else { gts = carried.timestamp; gcv = carried.canvas; }
    }

    const g = it.gnarly || {};
    const xg = xgnarlyFromDigests(qd, bd, uaDigest(ua), gts, gcv, {
      key: g.key, counter: g.counter, random16: g.random16, random32: g.random32,
      sdkTag: ST.sdkTag, sdkVersion: ST.sdkVersion,
      requestsSeen: seen, requestsIntercepted: 0,
    });
    ST.seen = seen;

    return {
      query: q, xBogus: xb, xGnarly: xg, xttParams: '', verifyFp: fp, timestamp: gts,
      canvas: gcv, userAgent: ua, header: [hd[0], hd[1]], signature: signature, engineXBogus: engine,
    };
  }

  // x-tt-params inside signBatch uses the synchronous JS AES: same output as
  // crypto.subtle (checked), no promise round trip per item, and it also works on
  // non-secure pages (about:blank / data: / http) where crypto.subtle is undefined.
  async function signBatch(items) {
    return signBatchSync(items);
  }

  // The same, without a promise: a DevTools caller then needs no awaitPromise round.
  function signBatchSync(items) {
    const list = Array.isArray(items) ? items : [items];
    const n = list.length;
    const out = new Array(n);
    for (let i = 0; i < n; i++) {
      try {
        const r = signOne(list[i]);
        r.xttParams = xttparamsSync(r.query);
        out[i] = r;
      } catch (e) {
        out[i] = { error: errMsg(e) };
      }
    }
    return out;
  }

  const api = Object.freeze({
    version: VERSION,
    md5: md5,
    md5hex: md5hex,
    utf8: utf8,
    rc4: rc4,
    xbogus: xbogus,
    xgnarly: xgnarly,
    xttparams: xttparams,
    xttparamsSync: xttparamsSync,
    verifyFp: verifyFp,
    canvasFingerprint: canvasFingerprint,
    navigatorData: navigatorData,
    init: init,
    signBatch: signBatch,
    signBatchSync: signBatchSync,
  });

  try {
    Object.defineProperty(G, '__ttsigner', { value: api, writable: true, configurable: true, enumerable: false });
  } catch (e) {
    G.__ttsigner = api;
  }
})();
