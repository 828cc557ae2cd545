// Likeness service worker: the app shell offline.
//
// On install it caches every file of the build that the app can load — index.html, the
// scripts and styles, the engine worker, onnxruntime-web's module and .wasm — from the list
// the build writes into sw-precache.js (see src/sw/precache-plugin.ts). Afterwards:
//   - page loads (navigations): the network first, so a new version shows up when online;
//     the cached index.html when the network fails;
//   - the build's files: the cache first (their names carry content hashes);
//   - model packs (packs/…): not touched. The pack loader keeps them in OPFS and falls back
//     to its cached manifest when the network is gone.
// A new build changes sw-precache.js, which makes the browser install this worker again; the
// old cache is deleted once the new one is complete.
/* global caches, fetch, importScripts, Request */
importScripts('sw-precache.js');

const PRECACHE = self.__LIKENESS_PRECACHE;
const PREFIX = 'likeness-shell-';
const CACHE = PREFIX + PRECACHE.version;
const scopeUrl = (path) => new URL(path, self.registration.scope).href;
const INDEX = scopeUrl('index.html');

self.addEventListener('install', (event) => {
  event.waitUntil(
    (async () => {
      const cache = await caches.open(CACHE);
      // cache: 'reload' skips the HTTP cache, so a half-updated server is not mixed in.
      await cache.addAll(PRECACHE.files.map((f) => new Request(scopeUrl(f), { cache: 'reload' })));
      await self.skipWaiting();
    })(),
  );
});

self.addEventListener('activate', (event) => {
  event.waitUntil(
    (async () => {
      for (const key of await caches.keys()) {
        if (key.startsWith(PREFIX) && key !== CACHE) await caches.delete(key);
      }
      await self.clients.claim();
    })(),
  );
});

const isPack = (url) => url.pathname.startsWith(new URL(scopeUrl('packs/')).pathname);

self.addEventListener('fetch', (event) => {
  const req = event.request;
  if (req.method !== 'GET') return;
  const url = new URL(req.url);
  if (url.origin !== self.location.origin || isPack(url)) return;
  if (req.mode === 'navigate') {
    event.respondWith(
      (async () => {
        try {
          return await fetch(req);
        } catch (err) {
          const cached = await caches.match(INDEX, { cacheName: CACHE });
          if (cached) return cached;
          throw err;
        }
      })(),
    );
    return;
  }
  event.respondWith(
    (async () => {
      const cached = await caches.match(req, { cacheName: CACHE, ignoreVary: true });
      if (cached) return cached;
      return fetch(req);
    })(),
  );
});
