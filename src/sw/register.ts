// Registers the offline service worker (public/sw.js) in production builds. In development
// vite serves modules on demand, which a precache cannot follow, so nothing is registered.
export function registerServiceWorker(): void {
  if (!import.meta.env.PROD || typeof navigator === 'undefined' || !('serviceWorker' in navigator)) return;
  const register = () => {
    navigator.serviceWorker.register(`${import.meta.env.BASE_URL}sw.js`).catch((err: unknown) => {
      // Offline use is a bonus: the app works online without it, so only the console hears.
      console.warn('Likeness: the offline service worker could not be registered:', err);
    });
  };
  if (document.readyState === 'complete') register();
  else window.addEventListener('load', register, { once: true });
}
