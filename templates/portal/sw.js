/* Parta's service worker, served by portal/pwa.py at /sw.js (the whole site
   is its scope). README: "Installing Parta on a phone, offline page and
   browser notifications".

   Privacy: phones are shared, and Cache Storage outlives signing out. So this
   worker keeps ONLY the offline page and the static files that page needs,
   fetched without cookies (the page anyone would get: no name, no token).
   It never puts a page, an API answer or a file it sees go by into a cache,
   and it deletes every other cache of the site and any stray entry when it
   starts. Pages and answers go to the network as if it were not there. */
"use strict";
const CONFIG = {{ config|safe }};
const KEEP = new Set(CONFIG.keep.map((path) => new URL(path, self.location.origin).href));

self.addEventListener("install", (event) => {
  event.waitUntil((async () => {
    const cache = await caches.open(CONFIG.cache);
    await cache.addAll(CONFIG.keep.map((path) => new Request(path, { credentials: "omit", cache: "no-cache" })));
    await self.skipWaiting();
  })());
});

self.addEventListener("activate", (event) => {
  event.waitUntil((async () => {
    for (const name of await caches.keys()) {
      if (name !== CONFIG.cache) await caches.delete(name);
    }
    const cache = await caches.open(CONFIG.cache);
    for (const request of await cache.keys()) {
      if (!KEEP.has(request.url)) await cache.delete(request);
    }
    // The page's request starts while the worker wakes up: no wait on slow phones.
    if (self.registration.navigationPreload) await self.registration.navigationPreload.enable();
    await self.clients.claim();
  })());
});

const kept = (url) => caches.match(url, { cacheName: CONFIG.cache });

self.addEventListener("fetch", (event) => {
  const request = event.request;
  // A form sent while offline fails as the browser shows it, which offers to
  // send it again; the offline page would lose what was typed.
  if (request.method !== "GET") return;
  if (request.mode === "navigate") {
    event.respondWith((async () => {
      try {
        return (await event.preloadResponse) || (await fetch(request));
      } catch {
        return (await kept(CONFIG.offline)) || Response.error();
      }
    })());
    return;
  }
  // The offline page's own files: the network first (so a new stylesheet is
  // never held back), the kept copy when there is no network.
  if (KEEP.has(request.url)) {
    event.respondWith(fetch(request).catch(async () => (await kept(request.url)) || Response.error()));
  }
});

// A notification of a new message (static/js/pwa.js): its chat, in the
// window already showing it, in another Parta window, or in a new one.
self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const target = new URL((event.notification.data && event.notification.data.url) || "/", self.location.origin).href;
  event.waitUntil((async () => {
    const windows = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
    const showing = windows.find((client) => client.url.split("#")[0] === target);
    if (showing) return showing.focus();
    for (const client of windows) {
      try {
        const focused = await client.focus();
        if (await focused.navigate(target)) return;
      } catch {
        // Not this window (not controlled by the worker yet): the next, or a new one.
      }
    }
    await self.clients.openWindow(target);
  })());
});
