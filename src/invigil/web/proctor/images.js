// Images behind staff authentication: fetched with the bearer token, shown as blob: URLs.
// Each URL is cached by its path (snapshot ids never change content) and freed when unused.

import { store } from "./store.js";

const cache = new Map(); // path -> Promise<objectURL>
const MAX = 400;
let active = 0;
const waiting = [];

async function slot(fn) {
  if (active >= 6) await new Promise((r) => waiting.push(r));
  active++;
  try {
    return await fn();
  } finally {
    active--;
    const next = waiting.shift();
    if (next) next();
  }
}

export function imageUrl(path) {
  if (!cache.has(path)) {
    const p = slot(async () => {
      const res = await fetch(path, { headers: { Authorization: `Bearer ${store.token}` }, cache: "no-store" });
      if (!res.ok) throw new Error(`${res.status}`);
      return URL.createObjectURL(await res.blob());
    });
    p.catch(() => cache.delete(path));
    cache.set(path, p);
    if (cache.size > MAX) {
      const [oldest] = cache.keys();
      const old = cache.get(oldest);
      cache.delete(oldest);
      old.then((u) => setTimeout(() => URL.revokeObjectURL(u), 30000)).catch(() => {});
    }
  }
  return cache.get(path);
}

/** Point an <img> at an authenticated path (no-op when it already shows it). */
export function setImage(img, path) {
  if (!path) {
    img.removeAttribute("src");
    img.dataset.path = "";
    img.classList.add("empty");
    return;
  }
  if (img.dataset.path === path) return;
  img.dataset.path = path;
  imageUrl(path)
    .then((url) => {
      if (img.dataset.path === path) {
        img.src = url;
        img.classList.remove("empty");
      }
    })
    .catch(() => {});
}
